"""Reads of the owner's room (``room_events``, ``room_stats``): the event feed, the Stats API
series, and the followers gained and lost since a time. What is derived from the events
(tippers, visitors, broadcasts) is in :mod:`storage.room_figures`.

Every read takes the account (the owner's username, lower case) and reads only its rows, in one
set-based statement on the indexes of migration 0014 ((account, occurred_at), (account, method,
occurred_at), (account, username, occurred_at)).

* **Events** (:func:`list_room_events`): newest first, by ``(occurred_at, length(event_id),
  event_id)``: ids are ``<milliseconds>-<sequence>``, so within one millisecond the longer id is
  the later one (``-10`` after ``-9``); keyset-paged on that key.
* **Stats** (:func:`stats_series`): the stored answers of a range, oldest first.
* **Follower changes** (:func:`follower_changes`): ``follow_events`` of kind ``new_follower`` /
  ``lost_follower``, every source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from storage.records import RoomEventRow

_EVENT_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, RoomEventRow.__struct_fields__))


class StatsPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One Stats API answer (``None``: the API said ``-1``, unknown)."""

    observed_at: dt.datetime
    num_followers: int | None
    num_viewers: int | None
    num_registered_viewers: int | None
    num_tokened_viewers: int | None
    token_balance: int | None
    tips_in_last_hour: int | None
    votes_up: int | None
    votes_down: int | None
    satisfaction_score: int | None
    last_broadcast: dt.datetime | None
    time_online: int | None


class FollowerChange(msgspec.Struct, frozen=True, kw_only=True):
    """A new or lost follower (a ``follow_events`` row of kind new_follower / lost_follower)."""

    username: str
    kind: str
    occurred_at: dt.datetime
    source: str


class FollowerChanges(msgspec.Struct, frozen=True, kw_only=True):
    """How many followers came and went since a time, and the newest of those changes."""

    gained: int
    lost: int
    latest: list[FollowerChange]


async def list_room_events(
    conn: AsyncConnection[Any],
    account: str,
    *,
    methods: list[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    username: str | None = None,
    limit: int = 50,
    after: tuple[dt.datetime, str] | None = None,
) -> list[RoomEventRow]:
    """The account's events, newest first; only ``methods`` (any of), in ``[since, until)``,
    about ``username`` (any case) when given; resumes after ``(occurred_at, event_id)``."""
    where = [sql.SQL("account = %(account)s")]
    if methods:
        where.append(sql.SQL("method = ANY(%(methods)s)"))
    if since is not None:
        where.append(sql.SQL("occurred_at >= %(since)s"))
    if until is not None:
        where.append(sql.SQL("occurred_at < %(until)s"))
    if username is not None:
        where.append(sql.SQL("username = lower(%(username)s)"))
    if after is not None:
        where.append(
            sql.SQL(
                "(occurred_at, length(event_id), event_id) "
                "< (%(after_at)s, length(%(after_id)s), %(after_id)s)"
            )
        )
    query = sql.SQL(
        "SELECT {columns} FROM room_events WHERE {where} "
        "ORDER BY occurred_at DESC, length(event_id) DESC, event_id DESC LIMIT %(limit)s"
    ).format(columns=_EVENT_COLUMNS, where=sql.SQL(" AND ").join(where))
    params = {
        "account": account,
        "methods": methods,
        "since": since,
        "until": until,
        "username": username,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    cur = conn.cursor(row_factory=class_row(RoomEventRow))
    return await (await cur.execute(query, params)).fetchall()


STATS = sql.SQL(
    "SELECT {columns} FROM room_stats WHERE account = %(account)s "
    "AND observed_at >= %(since)s AND observed_at < %(until)s ORDER BY observed_at"
).format(columns=sql.SQL(", ").join(map(sql.Identifier, StatsPoint.__struct_fields__)))


async def stats_series(
    conn: AsyncConnection[Any], account: str, since: dt.datetime, until: dt.datetime
) -> list[StatsPoint]:
    """The account's Stats API answers in ``[since, until)``, oldest first."""
    cur = conn.cursor(row_factory=class_row(StatsPoint))
    params = {"account": account, "since": since, "until": until}
    return await (await cur.execute(STATS, params)).fetchall()


FOLLOWER_CHANGES = """
SELECT p.username, e.kind, e.occurred_at, e.source
FROM follow_events e JOIN persons p ON p.person_id = e.person_id
WHERE e.kind IN ('new_follower', 'lost_follower')
  AND (e.account = %(account)s OR %(account)s::text IS NULL) AND e.occurred_at >= %(since)s
ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT %(limit)s
"""
FOLLOWER_COUNTS = """
SELECT (count(*) FILTER (WHERE kind = 'new_follower'))::int,
       (count(*) FILTER (WHERE kind = 'lost_follower'))::int
FROM follow_events WHERE kind IN ('new_follower', 'lost_follower')
  AND (account = %(account)s OR %(account)s::text IS NULL) AND occurred_at >= %(since)s
"""


async def follower_changes(
    conn: AsyncConnection[Any], account: str | None, since: dt.datetime, *, limit: int = 50
) -> FollowerChanges:
    """New and lost followers of ``account`` (None: of any account) since ``since`` (every
    source: the Events API in real time, and
    what complete followers crawls and imports concluded): their numbers, and the newest
    ``limit`` changes.

    A follower the stream reported is already a follower when the next crawl reconciles, so
    the crawl writes no second event: nothing is counted twice.
    """
    params = {"account": account, "since": since, "limit": limit}
    row = await (await conn.execute(FOLLOWER_COUNTS, params)).fetchone()
    assert row is not None  # an aggregate always answers one row
    cur = conn.cursor(row_factory=class_row(FollowerChange))
    latest = await (await cur.execute(FOLLOWER_CHANGES, params)).fetchall()
    return FollowerChanges(gained=row[0], lost=row[1], latest=latest)
