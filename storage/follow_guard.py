"""Guards of follow-state reconciliation: the mass-change limit and the last check of a list.

A complete list is trusted to set follow state, but a site change (new markup, an empty page
that still looks complete) can make a list look complete and short. So a reconciliation that
would remove more than ``max(follow.max_loss_count, follow.max_loss_share * current)`` people
is refused with :class:`~roomwatch.errors.FollowLossHeld` (its transaction rolled back, so
nothing is concluded) until the user confirms it. The crawl job then fails with the message,
which carries :data:`HELD`, and ``storage/alerts.py`` raises an alert from that job.

A followers list whose pages show no count has only one proof of being whole: the Stats
API's follower count (``room_stats.num_followers``, FORMATS.md §6.2). :func:`check_count`
compares the names read with the count observed nearest to the list's time, within
``stats.count_max_age_minutes`` of it (a crawl: now, as the conclusion is stored; an import:
when the pages were saved), and refuses with :class:`~roomwatch.errors.CountUnconfirmed` when
there is none or it differs by more than ``followers.count_tolerance``. The query runs in the
reconciliation's transaction, so the count compared is the one stored at that moment.

Saved pages (HTML imports) carry their own time; one saved before the list's last complete
check would roll follow state back, so :func:`last_check` tells the importer when that was,
by the database's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from psycopg import sql

from roomwatch.config import FollowConfig
from roomwatch.errors import CountUnconfirmed, FollowLossHeld

if TYPE_CHECKING:
    import psycopg

    from storage.follow_state import CountCheck, Relation

log = logging.getLogger(__name__)

HELD = "held, not concluded"
"""In every guard message; the alert query finds held crawls by it."""

_WORDS: dict[str, tuple[str, str]] = {
    "following": ("followed rooms", "unfollowed"),
    "follower": ("followers", "lost"),
}

# The list's complete checks are rows of source_polls (see follow_state._COMPLETE_POLL).
POLL_SOURCES: dict[str, list[str]] = {
    "following": ["followed_cams", "html_import:following"],
    "follower": ["followers", "html_import:follower"],
}

EVENT_WINS = """NOT EXISTS (
    SELECT 1 FROM follow_events e
    WHERE e.person_id = {person} AND e.kind IN (%(on)s, %(off)s) AND e.source = 'events_api'
      AND e.account = %(account)s AND e.occurred_at >= %(t)s)"""
"""A person the list leaves alone: the Events API changed the relation at or after the list's
time (``storage/room_events.py``); the newer news stands. On a tie the event wins: a crawl's
time is its start, and it read its pages after. Parameters ``account``, ``on``, ``off`` (the
relation's event kinds) and ``t`` (the list's time); ``{person}`` is the person's id."""

LOSS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE NOT (p.username = ANY(%(names)s::text[]))
                        AND (ap.{checked} IS NULL OR ap.{checked} <= %(t)s)
                        AND {event_wins})
FROM account_persons ap JOIN persons p ON p.person_id = ap.person_id
WHERE ap.account = %(account)s AND ap.{state}
"""

LAST_CHECK = (
    "SELECT now(), max(completed_at) FROM source_polls "
    "WHERE source = ANY(%(sources)s::text[]) AND account = %(account)s"
)


# The count nearest to the list's time (now, for a crawl), within the window either side.
STATS_COUNT_SQL = """
WITH k AS (SELECT coalesce(%(at)s::timestamptz, now()) AS at,
                  make_interval(mins => %(minutes)s::int) AS window)
SELECT s.num_followers, s.observed_at
FROM room_stats s, k
WHERE s.account = %(account)s AND s.num_followers IS NOT NULL
  AND s.observed_at BETWEEN k.at - k.window AND k.at + k.window
ORDER BY abs(extract(epoch FROM s.observed_at - k.at)), s.observed_at DESC
LIMIT 1
"""


def count_statement() -> sql.SQL:
    """Reads the Stats API count that may confirm a list (parameters ``account``, ``at``,
    ``minutes``): ``num_followers, observed_at``, or no row when none is recent enough."""
    return sql.SQL(STATS_COUNT_SQL)


def check_count(listed: int, check: CountCheck, row: tuple[Any, ...] | None) -> None:
    """Refuses a list whose pages show no count unless the Stats API's count confirms it.

    Args:
        listed: the names the list holds.
        check: whose count, the tolerance and the window.
        row: what :func:`count_statement` read (``num_followers, observed_at``), or None.

    Raises:
        CountUnconfirmed: no count within the window, or one further from ``listed`` than
            ``check.tolerance``; the message says which (with the count and its time).
    """
    minutes = check.max_age_minutes
    if row is None:
        window = (
            f"in the last {minutes} minutes"
            if check.at is None
            else f"within {minutes} minutes of {_iso(check.at)}, when the pages were saved"
        )
        whose = f" of {check.account}" if check.account else ""
        raise CountUnconfirmed(
            f"the followers page shows no count, and no Stats API follower count{whose} was "
            f"observed {window}: set stats.url, or run room_stats"
        )
    count, observed_at = int(row[0]), row[1]
    if abs(listed - count) > check.tolerance:
        raise CountUnconfirmed(
            f"the followers page shows no count and the Stats API's count ({count}, observed "
            f"at {_iso(observed_at)}) does not match the {listed} names read "
            f"(tolerance {check.tolerance})"
        )
    log.info(
        "followers of %s: the %d names read match the Stats API's count (%d, observed at %s)",
        check.account,
        listed,
        count,
        _iso(observed_at),
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def loss_statement(relation: Relation) -> sql.Composed:
    """Counts the persons the relation holds now and those a reconciliation would remove."""
    return sql.SQL(LOSS_SQL).format(
        state=sql.Identifier(relation),
        checked=sql.Identifier(f"{relation}_checked_at"),
        event_wins=sql.SQL(EVENT_WINS.format(person="p.person_id")),
    )


def check_loss(
    relation: Relation, current: int, removed: int, limits: FollowConfig, *, confirmed: bool
) -> None:
    """Refuses a loss past the limits unless the user confirmed it.

    Raises:
        FollowLossHeld: ``removed > max(max_loss_count, max_loss_share * current)``, not
            confirmed; the message says how many and why (the caller adds how to confirm).
    """
    allowed = max(limits.max_loss_count, limits.max_loss_share * current)
    if confirmed or removed <= allowed:
        return
    label, word = _WORDS[relation]
    share = round(100 * removed / current) if current else 100
    raise FollowLossHeld(
        f"{label}: {removed} of {current} would be marked {word} ({share} % > "
        f"{limits.max_loss_share * 100:g} %, more than {limits.max_loss_count}); {HELD}"
    )


def last_check(
    conn: psycopg.Connection[Any], relation: Relation, account: str | None
) -> tuple[dt.datetime, dt.datetime | None]:
    """The database's time now and the account's last complete check of the list (None: never
    checked, or no account)."""
    row = conn.execute(
        LAST_CHECK, {"sources": POLL_SOURCES[relation], "account": account}
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    return row[0], row[1]


async def last_check_async(
    conn: psycopg.AsyncConnection[Any], relation: Relation, account: str | None
) -> tuple[dt.datetime, dt.datetime | None]:
    """:func:`last_check` on an asynchronous connection."""
    cursor = await conn.execute(LAST_CHECK, {"sources": POLL_SOURCES[relation], "account": account})
    row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]
