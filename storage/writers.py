"""Batched, idempotent writers the pipelines call: history rows plus the latest-per-source table.

Every writer runs in one transaction: the batch (history rows, persons, rollups, latest values)
lands whole, except rows the database refuses, which are set aside and named in the result
(``storage/guards.py``); a database error of any other kind leaves none of it. Writing the same
observation twice (same person, same observed time) adds nothing the second time. Bulk rows go
in with COPY. Observation times are clamped to the database clock (``guards.database_time``).
Records are stored as they are: the decoders cleaned them (``storage/records.py``). The tables
and the SQL that fills them are declared in ``storage/tables.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from storage.guards import database_time, store_or_set_aside
from storage.latest import GROUPS
from storage.records import (
    ActivitySegment,
    AffiliateRoom,
    CbhoursLive,
    DailyActivity,
    RoomStatsRow,
    WriteResult,
)
from storage.tables import (
    AFFILIATE_SNAPSHOTS,
    CBHOURS_ACTIVITY,
    CBHOURS_DAILY,
    CBHOURS_LIVE,
    ROOM_STATS,
    Table,
    names,
    shown,
    upsert_latest,
)

Connection = psycopg.Connection[Any]

SNAPSHOT_COLUMNS = tuple(column.name for column in AFFILIATE_SNAPSHOTS.columns)


def ensure_partitions(
    conn: Connection, table: str, granularity: str, first: dt.datetime, last: dt.datetime
) -> None:
    """Creates the time partitions of ``table`` covering ``first``..``last`` if missing."""
    conn.execute(
        "SELECT roomwatch_ensure_partitions(%s::regclass, %s, %s, %s)",
        [table, granularity, first, last],
    )


@contextmanager
def deferred_summaries(conn: Connection) -> Iterator[None]:
    """Merges the persons the block's statements change into ``person_summary`` once, at its end.

    Inside the block the summary triggers only note whom they would merge (migration 0019);
    leaving it normally merges them all in one refresh, in the caller's transaction (the block
    must run inside one). A writer that changes the same persons in several statements (persons,
    then ``person_source_latest``) thus rewrites each summary row once. An error leaves the
    transaction to be rolled back, which undoes the deferral with the rest.
    """
    conn.execute("SELECT roomwatch_defer_summaries()")
    yield
    conn.execute("SELECT roomwatch_apply_deferred_summaries()")


def _create_persons(conn: Connection, usernames: Iterable[str]) -> dict[str, int]:
    """Creates the persons that are new; returns their ids by username (those already there are
    left as they are, unlocked). When a person was last seen online is not written here: it comes
    from the sources' live observations (``SEEN_ONLINE`` in ``storage/merge_rules.py``)."""
    rows = conn.execute(
        """
        INSERT INTO persons (username) SELECT u FROM unnest(%b::text[]) AS u ORDER BY u
        ON CONFLICT (username) DO NOTHING RETURNING username, person_id
        """,
        [list(usernames)],
    )
    return {str(name): int(person_id) for name, person_id in rows}


_T = "%(t)s::timestamptz"  # the observation time, a parameter of every statement below

# Arrays of names and ids go as binary parameters (%b): psycopg encodes a poll's 10,000 names
# about three times faster so than as text.

# Upserts take their rows' locks in one order (usernames, person ids ascending): two writers of
# overlapping persons (nodes polling the same feed) then wait for each other instead of
# deadlocking, as they did when each locked in its own feed order (bench/writers_concurrency.py).

# The Affiliate feed reports every group but rank, all at the poll's time: latest column ->
# the snapshot column (or expression) that fills it.
_AFFILIATE_VALUES = {
    "person_id": "person_id",
    "source": "'affiliate'",
    **{column: column for column in GROUPS["profile_at"]},
    "profile_at": _T,
    "online": "true",
    "current_show": "current_show",
    "viewers": "num_users",
    "subject": "room_subject",
    "live_at": _T,
    "followers": "num_followers",
    "followers_at": _T,
    "tags": "tags",
    "tags_at": _T,
    "image_url": "image_url",
    "image_at": _T,
}
# What the rollup and the latest values read of a batch's snapshots.
_READ_BACK = [
    column.name
    for column in AFFILIATE_SNAPSHOTS.columns
    if column.name in {*_AFFILIATE_VALUES.values(), "num_users", "num_followers"}
]

# A batch's rows are read back from the snapshots just written (their pages are in memory): a
# second COPY of them into a staging table cost more. One statement feeds the hourly rollup and
# person_source_latest. A room stored at this time already (a poll written twice) is read as
# first stored, and is not counted again in the rollup.
_AFFILIATE_ROWS = sql.SQL(
    """
WITH poll AS MATERIALIZED (
    SELECT {columns}, NOT (person_id = ANY(%(seen)s::bigint[])) AS fresh
    FROM affiliate_api_snapshots
    WHERE observed_at = %(t)s AND person_id = ANY(%(ids)b::bigint[])
), rollup AS (
    INSERT INTO affiliate_hourly AS h (person_id, hour, samples, viewers_sum, viewers_max,
                                       followers_min, followers_max, followers_last,
                                       last_observed_at)
    SELECT person_id, date_trunc('hour', %(t)s::timestamptz), 1, num_users, num_users,
           num_followers, num_followers, num_followers, %(t)s
    FROM poll WHERE fresh ORDER BY person_id
    ON CONFLICT (person_id, hour) DO UPDATE SET
        samples = h.samples + 1,
        viewers_sum = h.viewers_sum + excluded.viewers_sum,
        viewers_max = GREATEST(h.viewers_max, excluded.viewers_max),
        followers_min = LEAST(h.followers_min, excluded.followers_min),
        followers_max = GREATEST(h.followers_max, excluded.followers_max),
        followers_last = CASE WHEN excluded.last_observed_at >= h.last_observed_at
                              THEN excluded.followers_last ELSE h.followers_last END,
        last_observed_at = GREATEST(h.last_observed_at, excluded.last_observed_at)
)
"""
).format(columns=names(_READ_BACK))
_AFFILIATE_LATEST = _AFFILIATE_ROWS + upsert_latest(
    _AFFILIATE_VALUES, sql.SQL("FROM poll ORDER BY person_id")
)

# After a complete poll, a person the feed no longer lists is offline as of that poll. Those
# it listed are excluded by name as well as by time: a room whose row was set aside (refused
# by the database) was still seen online, and a poll time clamped to the database clock
# (storage/guards.py) may differ between the poll's batches.
_AFFILIATE_ABSENT = """
UPDATE person_source_latest l
SET online = false, current_show = 'offline', viewers = 0, live_at = %(t)s
WHERE l.source = 'affiliate' AND l.online AND l.live_at < %(t)s
  AND l.person_id NOT IN (SELECT person_id FROM persons WHERE username = ANY(%(seen)b::text[]))
"""


def write_affiliate_poll(
    conn: Connection,
    rooms: Sequence[AffiliateRoom],
    *,
    observed_at: dt.datetime,
    job_id: int | None = None,
    complete: bool = False,
) -> WriteResult:
    """Stores one poll (or one batch of its pages) of the Affiliate feed.

    A room the database refuses is set aside (``storage/guards.py``); the others are stored.

    Args:
        rooms: the rooms seen; a username listed twice is stored once (the later row wins).
        observed_at: the poll's time; one crawl is one observation time. A time beyond the
            database clock's margin is stored as the database's ``now()``.
        complete: True only when every page of the poll was read: then persons absent from
            the feed are concluded offline and the poll is recorded in ``source_polls``.
    """
    unique = list({room.username: room for room in rooms}.values())
    with conn.transaction(), deferred_summaries(conn):
        result = store_or_set_aside(
            conn, unique, _write_affiliate_rooms, observed_at, job_id, what="affiliate room"
        )
        if complete:
            seen = [room.username for room in unique]
            conclude_affiliate_poll(conn, observed_at, job_id, len(unique), seen)
    return result


def _write_affiliate_rooms(
    conn: Connection, rooms: Sequence[AffiliateRoom], observed_at: dt.datetime, job_id: int | None
) -> WriteResult:
    """The rows of ``rooms`` (unique names): persons, history, rollup, latest."""
    ensure_partitions(conn, "affiliate_api_snapshots", "day", observed_at, observed_at)
    ensure_partitions(conn, "affiliate_hourly", "month", observed_at, observed_at)
    ids, seen = _poll_persons(conn, [room.username for room in rooms], observed_at)
    fresh = [room for room in rooms if ids[room.username] not in seen]
    AFFILIATE_SNAPSHOTS.copy_rows(
        conn, (AFFILIATE_SNAPSHOTS.row((ids[r.username], observed_at, job_id), r) for r in fresh)
    )
    params = {"t": observed_at, "ids": list(ids.values()), "seen": sorted(seen)}
    conn.execute(_AFFILIATE_LATEST, params)
    return WriteResult(inserted=len(fresh), duplicates=len(rooms) - len(fresh))


def snapshot_row(
    person_id: int, observed_at: dt.datetime, job_id: int | None, r: AffiliateRoom
) -> tuple[object, ...]:
    """One ``affiliate_api_snapshots`` row, in the order of ``SNAPSHOT_COLUMNS``."""
    return AFFILIATE_SNAPSHOTS.row((person_id, observed_at, job_id), r)


def _poll_persons(
    conn: Connection, names: Sequence[str], observed_at: dt.datetime
) -> tuple[dict[str, int], set[int]]:
    """Every polled person's id by username, creating the new ones; and the ids of those whose
    snapshot at ``observed_at`` is stored already (the poll written twice).

    Persons are looked up first and only the missing ones inserted: a poll of persons already
    known writes no persons row.
    """
    ids: dict[str, int] = {}
    seen: set[int] = set()
    # Twice at most: a name another writer inserted after the look-up and before the insert is
    # neither found nor inserted, and is found by the second look-up.
    for _ in range(2):
        missing = sorted(set(names) - ids.keys())
        if not missing:
            break
        found = conn.execute(
            """
            SELECT p.username, p.person_id, EXISTS (
                SELECT FROM affiliate_api_snapshots s
                WHERE s.person_id = p.person_id AND s.observed_at = %(t)s)
            FROM persons p WHERE p.username = ANY(%(names)b::text[])
            """,
            {"names": missing, "t": observed_at},
        )
        for name, person_id, stored in found:
            ids[str(name)] = int(person_id)
            if stored:
                seen.add(int(person_id))
        new = set(missing) - ids.keys()
        if new:
            ids.update(_create_persons(conn, new))
    return ids, seen


def conclude_affiliate_poll(
    conn: Connection,
    observed_at: dt.datetime,
    job_id: int | None,
    rows_seen: int,
    seen: Sequence[str] = (),
) -> None:
    """After a poll that read every page: whoever the feed no longer lists is offline.

    A poll with rows set aside still concludes: every page was read, so who was absent is
    known; the set-aside rooms were present and are named in ``seen``, so they are not
    concluded offline (their last stored state simply ages, as after a missed poll).

    Args:
        seen: the (lower-case) usernames the poll listed; none are concluded offline.
    """
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        conn.execute(_AFFILIATE_ABSENT, {"t": observed_at, "seen": list(seen)})
        record_complete_poll(conn, "affiliate", observed_at, job_id, rows_seen)


def record_complete_poll(
    conn: Connection, source: str, completed_at: dt.datetime, job_id: int | None, rows_seen: int
) -> None:
    """Notes that ``source`` was read completely at ``completed_at`` (idempotent)."""
    conn.execute(
        "INSERT INTO source_polls (source, completed_at, job_id, rows_seen) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (source, account, completed_at) DO NOTHING",
        [source, completed_at, job_id, rows_seen],
    )


_ONLINE = "s.room_status = 'Online'"

# CBHours reports rank; an offline row only its status (the live group), the others what it has.
_CBHOURS_LATEST = upsert_latest(
    {
        "person_id": "p.person_id",
        "source": "'cbhours'",
        "gender": "s.gender",
        "profile_at": shown("s.gender"),
        "online": _ONLINE,
        "current_show": f"CASE WHEN {_ONLINE} THEN s.current_show ELSE 'offline' END",
        "viewers": f"CASE WHEN {_ONLINE} THEN s.viewers ELSE 0 END",
        "subject": "s.room_subject",
        "live_at": _T,
        "followers": "s.followers",
        "followers_at": shown("s.followers"),
        "tags": "s.tags",
        "tags_at": shown("s.tags"),
        "rank": "s.rank",
        "grank": "s.grank",
        "rank_at": shown("s.rank"),
    },
    sql.SQL("FROM {} s JOIN persons p ON p.username = s.username").format(
        sql.Identifier(CBHOURS_LIVE.stage.name)
    ),
)


def write_cbhours_live(
    conn: Connection,
    rows: Sequence[CbhoursLive],
    *,
    observed_at: dt.datetime,
    job_id: int | None = None,
) -> WriteResult:
    """Stores one ``get_live`` answer; also marks each returned person as a trophy holder.

    A row the database refuses is set aside (``storage/guards.py``); the others are stored.
    """
    unique = list({row.username: row for row in rows}.values())
    with conn.transaction(), deferred_summaries(conn):
        return store_or_set_aside(
            conn, unique, _write_cbhours_rows, observed_at, job_id, what="cbhours_live row"
        )


def _write_cbhours_rows(
    conn: Connection, rows: Sequence[CbhoursLive], observed_at: dt.datetime, job_id: int | None
) -> WriteResult:
    ensure_partitions(conn, "cbhours_live_stats", "day", observed_at, observed_at)
    _stage(conn, CBHOURS_LIVE.stage, rows)
    _create_persons(conn, {row.username for row in rows})
    params = {"t": observed_at, "job": job_id}
    inserted = conn.execute(CBHOURS_LIVE.insert, params).rowcount
    conn.execute(
        sql.SQL(
            """
            UPDATE persons p SET has_cbhours_trophy = true, cbhours_trophy_checked_at = %(t)s
            FROM {stage} s WHERE p.username = s.username
              AND (p.cbhours_trophy_checked_at IS NULL OR p.cbhours_trophy_checked_at < %(t)s)
            """
        ).format(stage=sql.Identifier(CBHOURS_LIVE.stage.name)),
        params,
    )
    conn.execute(_CBHOURS_LATEST, params)
    conn.execute(CBHOURS_LIVE.stage.drop())  # see _write_affiliate_rooms
    return WriteResult(inserted=inserted, duplicates=len(rows) - inserted)


def _stage(conn: Connection, stage: Table, rows: Iterable[Any]) -> None:
    """Creates ``stage`` and copies the records ``rows`` into it, by username."""
    conn.execute(stage.create())
    stage.copy_rows(conn, (stage.row((row.username,), row) for row in rows))


def mark_without_trophy(conn: Connection, usernames: Iterable[str], checked_at: dt.datetime) -> int:
    """Records that CBHours does not track these persons (no trophy), so polls skip them a while."""
    names = sorted({name.lower() for name in usernames})
    with conn.transaction():
        checked_at = database_time(conn, checked_at)
        _create_persons(conn, names)
        return conn.execute(
            """
            UPDATE persons SET has_cbhours_trophy = false, cbhours_trophy_checked_at = %s
            WHERE username = ANY(%s)
            """,
            [checked_at, names],
        ).rowcount


def write_cbhours_activity(
    conn: Connection,
    segments: Sequence[ActivitySegment],
    daily: Sequence[DailyActivity],
    *,
    observed_at: dt.datetime,
    job_id: int | None = None,
) -> WriteResult:
    """Upserts 3-minute segments (unique per person and time) and daily online totals.

    A segment or day the database refuses is set aside (``storage/guards.py``).
    """
    rows: list[ActivitySegment | DailyActivity] = [*segments, *daily]
    with conn.transaction():
        return store_or_set_aside(
            conn, rows, _write_activity_rows, observed_at, job_id, what="cbhours_activity row"
        )


def _write_activity_rows(
    conn: Connection,
    rows: Sequence[ActivitySegment | DailyActivity],
    observed_at: dt.datetime,
    job_id: int | None,
) -> WriteResult:
    segments = [row for row in rows if isinstance(row, ActivitySegment)]
    daily = [row for row in rows if isinstance(row, DailyActivity)]
    _create_persons(conn, {row.username for row in rows})
    params = {"t": observed_at, "job": job_id}
    inserted = 0
    if segments:
        times = [s.segment_at for s in segments]
        ensure_partitions(conn, "cbhours_activity", "month", min(times), max(times))
        _stage(conn, CBHOURS_ACTIVITY.stage, segments)
        inserted = conn.execute(CBHOURS_ACTIVITY.insert, params).rowcount
        conn.execute(CBHOURS_ACTIVITY.stage.drop())  # see _write_affiliate_rooms
    if daily:
        _stage(conn, CBHOURS_DAILY.stage, daily)
        conn.execute(CBHOURS_DAILY.insert, params)
        conn.execute(CBHOURS_DAILY.stage.drop())
    return WriteResult(inserted=inserted, duplicates=len(segments) - inserted)


# The owner's follower count, as the Stats API counts it: the followers group of the owner's
# person under the source stats_api (the merge view ranks it after cbhours and affiliate).
_STATS_LATEST = upsert_latest(
    {
        "person_id": "p.person_id",
        "source": "'stats_api'",
        "followers": "%(followers)s::integer",
        "followers_at": _T,
    },
    sql.SQL("FROM persons p WHERE p.username = %(account)s AND %(followers)s::integer IS NOT NULL"),
)


def write_room_stats(
    conn: Connection, row: RoomStatsRow, *, observed_at: dt.datetime, job_id: int | None = None
) -> int:
    """Stores one Stats API answer: a ``room_stats`` row, and the owner's follower count as
    an observation of source ``stats_api`` (the owner's person created if missing).

    Idempotent: the same answer again (same account and observed time) adds nothing; returns
    the rows new to ``room_stats`` (1 or 0).

    Args:
        row: the answer; its ``username`` is the account (the table's ``account``).
        observed_at: when it was read; clamped to the database clock.
    """
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        inserted = conn.execute(
            ROOM_STATS.insert_row(("account", "observed_at")),
            ROOM_STATS.row((row.username, observed_at, job_id), row),
        ).rowcount
        _create_persons(conn, [row.username])
        conn.execute(
            _STATS_LATEST,
            {"account": row.username, "followers": row.num_followers, "t": observed_at},
        )
    return inserted
