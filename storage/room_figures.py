"""What is derived from the owner's room events: tippers, visitors and broadcasts.

Each read takes the account and is one set-based statement on the indexes of migration 0014
(:mod:`storage.room` has the feed itself). The rules:

* **Tippers** (:func:`list_tippers`): tips in ``[since, until)`` per username: total tokens,
  count, last tip; biggest total first. Anonymous tips (``is_anon``) are never a person's: they
  are counted apart (:class:`TipTotals`), as are tips that name no one.
* **Visitors** (:func:`list_visitors`): a visit is a ``userEnter`` in ``[since, until)``; it
  ends at the earliest of the user's next ``userLeave`` or ``userEnter`` (a second enter without
  a leave closes the first), the next ``broadcastStop``, :data:`MAX_VISIT` after it began,
  ``until`` and now. A visit with no end yet is open (the user is in the room). A leave with no
  enter before it in the range counts nothing.
* **Broadcasts** (:func:`list_broadcasts`): every ``broadcastStart`` begins one; it ends at the
  next ``broadcastStop``. A start followed by another start (the stop never came) ends at the
  last event stored before the next start. A start with neither after it is ongoing. A stop
  with a stop before it is ignored; the first stop stored, with no start before it (the stream
  or the retention began mid-broadcast), begins at the first event stored (``start_seen``
  false). Figures count the events inside ``[started_at, ended_at or now]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

VisitorSort = Literal["last_seen", "visits", "time_spent"]
MAX_VISIT = dt.timedelta(hours=12)
"""A visit longer than this (a leave never came) counts this long."""


class Tipper(msgspec.Struct, frozen=True, kw_only=True):
    """One person's tips in a range (anonymous tips are never anyone's)."""

    username: str
    tokens: int
    tips: int
    last_tip_at: dt.datetime


class TipTotals(msgspec.Struct, frozen=True, kw_only=True):
    """All tips of a range, and those that are no person's (anonymous, or naming no one)."""

    tips: int
    tokens: int
    anonymous_tips: int
    anonymous_tokens: int


class Visitor(msgspec.Struct, frozen=True, kw_only=True):
    """One person's visits in a range (see the module docstring for when a visit ends).

    Attributes:
        visits: ``userEnter`` events in the range.
        last_seen: the end of the latest visit (now, while it is open).
        seconds: time spent in the room, all visits.
        in_room: the latest visit is still open.
    """

    username: str
    visits: int
    last_seen: dt.datetime
    seconds: int
    in_room: bool


class Broadcast(msgspec.Struct, frozen=True, kw_only=True):
    """One broadcast and what happened during it.

    Attributes:
        broadcast_id: the event id of its ``broadcastStart`` (of its stop, when no start was seen).
        start_seen: False: the start was not stored; ``started_at`` is the first event stored.
        ended_at: its ``broadcastStop``, or the last event before the next start; None: ongoing.
        seconds: ``ended_at`` (or now) minus ``started_at``.
        followers_gained, followers_lost: ``follow`` / ``unfollow`` events during it.
        visitors: distinct usernames that entered.
    """

    broadcast_id: str
    started_at: dt.datetime
    start_seen: bool
    ended_at: dt.datetime | None
    ongoing: bool
    seconds: int
    followers_gained: int
    followers_lost: int
    tips: int
    tokens: int
    visitors: int


_TIPS = (
    "FROM room_events WHERE account = %(account)s AND method = 'tip' "
    "AND occurred_at >= %(since)s AND occurred_at < %(until)s"
)
TIPPERS = (
    "SELECT username, coalesce(sum(tokens), 0)::bigint AS tokens, count(*)::int AS tips, "
    "max(occurred_at) AS last_tip_at " + _TIPS + " AND username IS NOT NULL "
    "AND is_anon IS NOT TRUE GROUP BY username "
    "HAVING %(after_tokens)s::bigint IS NULL "
    "OR (coalesce(sum(tokens), 0), username) < (%(after_tokens)s, %(after_name)s::text) "
    "ORDER BY tokens DESC, username DESC LIMIT %(limit)s"
)
TIP_TOTALS = (
    "SELECT count(*)::int AS tips, coalesce(sum(tokens), 0)::bigint AS tokens, "
    "(count(*) FILTER (WHERE is_anon IS TRUE OR username IS NULL))::int AS anonymous_tips, "
    "coalesce(sum(tokens) FILTER (WHERE is_anon IS TRUE OR username IS NULL), 0)::bigint "
    "AS anonymous_tokens " + _TIPS
)


async def list_tippers(
    conn: AsyncConnection[Any],
    account: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int = 50,
    after: tuple[int, str] | None = None,
) -> list[Tipper]:
    """Who tipped in ``[since, until)``, biggest total first (ties: by username, descending),
    resuming after ``(tokens, username)``."""
    params = {
        "account": account,
        "since": since,
        "until": until,
        "limit": limit,
        "after_tokens": after[0] if after else None,
        "after_name": after[1] if after else None,
    }
    cur = conn.cursor(row_factory=class_row(Tipper))
    return await (await cur.execute(TIPPERS, params)).fetchall()


async def tip_totals(
    conn: AsyncConnection[Any], account: str, since: dt.datetime, until: dt.datetime
) -> TipTotals:
    """Every tip of ``[since, until)``, and the anonymous ones apart."""
    cur = conn.cursor(row_factory=class_row(TipTotals))
    params = {"account": account, "since": since, "until": until}
    row = await (await cur.execute(TIP_TOTALS, params)).fetchone()
    assert row is not None  # an aggregate always answers one row
    return row


# One row per userEnter of the range, with when its visit ends (the module docstring's rule).
_VISITS = """
WITH moves AS (
    SELECT username, method, occurred_at,
           lead(occurred_at) OVER (PARTITION BY username ORDER BY occurred_at,
                                   length(event_id), event_id) AS next_move
    FROM room_events
    WHERE account = %(account)s AND method IN ('userEnter', 'userLeave')
      AND username IS NOT NULL AND occurred_at >= %(since)s AND occurred_at < %(until)s
), visits AS (
    SELECT m.username, m.occurred_at AS entered_at,
           m.next_move IS NULL AND stop.at IS NULL
               AND m.occurred_at + %(max_visit)s > least(%(until)s, now()) AS open,
           least(m.next_move, stop.at, m.occurred_at + %(max_visit)s, %(until)s,
                 greatest(now(), m.occurred_at)) AS left_at
    FROM moves m
    LEFT JOIN LATERAL (
        SELECT s.occurred_at AS at FROM room_events s
        WHERE s.account = %(account)s AND s.method = 'broadcastStop'
          AND s.occurred_at > m.occurred_at AND s.occurred_at < %(until)s
        ORDER BY s.occurred_at LIMIT 1
    ) stop ON true
    WHERE m.method = 'userEnter'
), visitors AS (
    SELECT username, count(*)::int AS visits, max(left_at) AS last_seen,
           sum(extract(epoch FROM left_at - entered_at))::bigint AS seconds,
           (array_agg(open ORDER BY entered_at DESC))[1] AS in_room
    FROM visits GROUP BY username
)
SELECT username, visits, last_seen, seconds, in_room FROM visitors
"""
# Sort -> (its column, the cursor's type of value).
VISITOR_SORTS: dict[VisitorSort, tuple[str, type]] = {
    "last_seen": ("last_seen", dt.datetime),
    "visits": ("visits", int),
    "time_spent": ("seconds", int),
}


async def list_visitors(
    conn: AsyncConnection[Any],
    account: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    sort: VisitorSort = "last_seen",
    limit: int = 50,
    after: tuple[int | dt.datetime, str] | None = None,
) -> list[Visitor]:
    """Who entered the room in ``[since, until)``, by ``sort`` (largest or latest first; ties
    by username, descending), resuming after ``(sort value, username)``."""
    column = sql.Identifier(VISITOR_SORTS[sort][0])
    keyset: sql.Composable = sql.SQL("")
    if after is not None:
        keyset = sql.SQL(" WHERE ({col}, username) < (%(after_value)s, %(after_name)s)").format(
            col=column
        )
    query = sql.SQL(_VISITS + "{keyset} ORDER BY {col} DESC, username DESC LIMIT %(limit)s").format(
        keyset=keyset, col=column
    )
    params = {
        "account": account,
        "since": since,
        "until": until,
        "max_visit": MAX_VISIT,
        "limit": limit,
        "after_value": after[0] if after else None,
        "after_name": after[1] if after else None,
    }
    cur = conn.cursor(row_factory=class_row(Visitor))
    return await (await cur.execute(query, params)).fetchall()


BROADCASTS = """
WITH bounds AS (
    SELECT event_id, occurred_at, method,
           lag(method) OVER w AS previous, lead(method) OVER w AS next,
           lead(occurred_at) OVER w AS next_at
    FROM room_events
    WHERE account = %(account)s AND method IN ('broadcastStart', 'broadcastStop')
    WINDOW w AS (ORDER BY occurred_at, length(event_id), event_id)
), sessions AS (
    SELECT event_id AS broadcast_id, occurred_at AS started_at, true AS start_seen,
           CASE next WHEN 'broadcastStop' THEN next_at END AS stopped_at,
           CASE next WHEN 'broadcastStart' THEN next_at END AS next_start_at
    FROM bounds WHERE method = 'broadcastStart'
    UNION ALL
    SELECT event_id, (SELECT min(occurred_at) FROM room_events WHERE account = %(account)s),
           false, occurred_at, NULL
    FROM bounds WHERE method = 'broadcastStop' AND previous IS NULL
), page AS (
    SELECT * FROM sessions
    WHERE %(after_at)s::timestamptz IS NULL
       OR (started_at, length(broadcast_id), broadcast_id)
          < (%(after_at)s, length(%(after_id)s::text), %(after_id)s::text)
    ORDER BY started_at DESC, length(broadcast_id) DESC, broadcast_id DESC LIMIT %(limit)s
), ended AS (
    SELECT p.*, coalesce(p.stopped_at, (
               SELECT max(e.occurred_at) FROM room_events e
               WHERE e.account = %(account)s AND e.occurred_at >= p.started_at
                 AND e.occurred_at < p.next_start_at)) AS ended_at
    FROM page p
)
SELECT d.broadcast_id, d.started_at, d.start_seen, d.ended_at,
       d.stopped_at IS NULL AND d.next_start_at IS NULL AS ongoing,
       extract(epoch FROM coalesce(d.ended_at, greatest(now(), d.started_at))
                          - d.started_at)::bigint AS seconds,
       f.followers_gained, f.followers_lost, f.tips, f.tokens, f.visitors
FROM ended d
CROSS JOIN LATERAL (
    SELECT (count(*) FILTER (WHERE e.method = 'follow'))::int AS followers_gained,
           (count(*) FILTER (WHERE e.method = 'unfollow'))::int AS followers_lost,
           (count(*) FILTER (WHERE e.method = 'tip'))::int AS tips,
           coalesce(sum(e.tokens) FILTER (WHERE e.method = 'tip'), 0)::bigint AS tokens,
           (count(DISTINCT e.username) FILTER (WHERE e.method = 'userEnter'))::int AS visitors
    FROM room_events e
    WHERE e.account = %(account)s AND e.method IN ('follow', 'unfollow', 'tip', 'userEnter')
      AND e.occurred_at >= d.started_at
      AND e.occurred_at <= coalesce(d.ended_at, greatest(now(), d.started_at))
) f
ORDER BY d.started_at DESC, length(d.broadcast_id) DESC, d.broadcast_id DESC
"""


async def list_broadcasts(
    conn: AsyncConnection[Any],
    account: str,
    *,
    limit: int = 20,
    after: tuple[dt.datetime, str] | None = None,
) -> list[Broadcast]:
    """The account's broadcasts, newest first, resuming after ``(started_at, broadcast_id)``."""
    params = {
        "account": account,
        "limit": limit,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
    }
    cur = conn.cursor(row_factory=class_row(Broadcast))
    return await (await cur.execute(BROADCASTS, params)).fetchall()
