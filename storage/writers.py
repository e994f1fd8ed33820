"""Batched, idempotent writers the pipelines call: history rows plus the latest-per-source table.

Every writer runs in one transaction: the batch (history rows, persons, rollups, latest values)
lands whole, except rows the database refuses, which are set aside and named in the result
(``storage/guards.py``); a database error of any other kind leaves none of it. Writing the same
observation twice (same person, same observed time) adds nothing the second time. Bulk rows go
in with COPY. Observation times are clamped to the database clock (``guards.database_time``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from storage.guards import database_time, store_or_set_aside
from storage.latest import upsert_latest_sql
from storage.records import (
    ActivitySegment,
    AffiliateRoom,
    CbhoursLive,
    DailyActivity,
    WriteResult,
)

Connection = psycopg.Connection[Any]

SNAPSHOT_COLUMNS = (
    "person_id",
    "observed_at",
    "job_id",
    "gender",
    "location",
    "current_show",
    "room_subject",
    "tags",
    "is_new",
    "num_users",
    "num_followers",
    "country",
    "spoken_languages",
    "display_name",
    "birthday",
    "is_hd",
    "age",
    "seconds_online",
    "image_url",
    "image_url_360x270",
    "chat_room_url_revshare",
    "iframe_embed_revshare",
    "chat_room_url",
    "iframe_embed",
    "slug",
    "raw",
)


def _none_if_empty(value: str | None) -> str | None:
    return value if value else None


def ensure_partitions(
    conn: Connection, table: str, granularity: str, first: dt.datetime, last: dt.datetime
) -> None:
    """Creates the time partitions of ``table`` covering ``first``..``last`` if missing."""
    conn.execute(
        "SELECT roomwatch_ensure_partitions(%s::regclass, %s, %s, %s)",
        [table, granularity, first, last],
    )


def _stage_persons(
    conn: Connection, usernames: Iterable[str], seen_online: dt.datetime | None
) -> None:
    """Creates persons that are new and records when they were last seen online."""
    conn.execute(
        """
        INSERT INTO persons AS p (username, last_seen_online_at)
        SELECT u, %(seen)s FROM unnest(%(names)s::text[]) AS u
        ON CONFLICT (username) DO UPDATE SET last_seen_online_at = excluded.last_seen_online_at
        WHERE excluded.last_seen_online_at IS NOT NULL
          AND (p.last_seen_online_at IS NULL
               OR p.last_seen_online_at < excluded.last_seen_online_at)
        """,
        {"names": list(usernames), "seen": seen_online},
    )


_AFFILIATE_STAGE = """
CREATE TEMP TABLE affiliate_stage (
    person_id bigint, fresh boolean, gender text, location text, current_show text,
    subject text, tags text[], viewers int, followers int, country text, spoken_languages text,
    display_name text, birthday date, age smallint, image_url text
) ON COMMIT DROP
"""

_AFFILIATE_LATEST = sql.SQL(
    """
    SELECT person_id, 'affiliate',
           display_name, age, birthday,
           CASE gender WHEN 's' THEN 't' ELSE gender END, location, country, spoken_languages,
           {t},
           true, current_show, viewers, subject, {t},
           followers, {t},
           tags, {t},
           NULL::int, NULL::int, NULL::timestamptz,
           image_url, {t}
    FROM affiliate_stage
    """
)

_AFFILIATE_ROLLUP = """
INSERT INTO affiliate_hourly AS h (person_id, hour, samples, viewers_sum, viewers_max,
                                   followers_min, followers_max, followers_last, last_observed_at)
SELECT person_id, date_trunc('hour', %(t)s::timestamptz), 1, viewers, viewers,
       followers, followers, followers, %(t)s
FROM affiliate_stage WHERE fresh
ON CONFLICT (person_id, hour) DO UPDATE SET
    samples = h.samples + 1,
    viewers_sum = h.viewers_sum + excluded.viewers_sum,
    viewers_max = GREATEST(h.viewers_max, excluded.viewers_max),
    followers_min = LEAST(h.followers_min, excluded.followers_min),
    followers_max = GREATEST(h.followers_max, excluded.followers_max),
    followers_last = CASE WHEN excluded.last_observed_at >= h.last_observed_at
                          THEN excluded.followers_last ELSE h.followers_last END,
    last_observed_at = GREATEST(h.last_observed_at, excluded.last_observed_at)
"""

# After a complete poll, a person the feed no longer lists is offline as of that poll. Those
# it listed are excluded by name as well as by time: a room whose row was set aside (refused
# by the database) was still seen online, and a poll time clamped to the database clock
# (storage/guards.py) may differ between the poll's batches.
_AFFILIATE_ABSENT = """
UPDATE person_source_latest l
SET online = false, current_show = 'offline', viewers = 0, live_at = %(t)s
WHERE l.source = 'affiliate' AND l.online AND l.live_at < %(t)s
  AND l.person_id NOT IN (SELECT person_id FROM persons WHERE username = ANY(%(seen)s::text[]))
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
    unique = list({room.username.lower(): room for room in rooms}.values())
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        ensure_partitions(conn, "affiliate_api_snapshots", "day", observed_at, observed_at)
        ensure_partitions(conn, "affiliate_hourly", "month", observed_at, observed_at)
        result = store_or_set_aside(
            conn,
            unique,
            lambda part: _write_affiliate_rooms(conn, part, observed_at, job_id),
            what="affiliate room",
            job_id=job_id,
        )
        if complete:
            seen = [room.username.lower() for room in unique]
            conclude_affiliate_poll(conn, observed_at, job_id, len(unique), seen)
    return result


def _write_affiliate_rooms(
    conn: Connection, rooms: Sequence[AffiliateRoom], observed_at: dt.datetime, job_id: int | None
) -> WriteResult:
    """The rows of ``rooms`` (unique, lower-cased names): persons, history, rollup, latest."""
    unique = {room.username.lower(): room for room in rooms}
    ids = _upsert_online_persons(conn, unique, observed_at)
    seen = {
        int(row[0])
        for row in conn.execute(
            "SELECT person_id FROM affiliate_api_snapshots "
            "WHERE observed_at = %s AND person_id = ANY(%s)",
            [observed_at, list(ids.values())],
        )
    }
    conn.execute(_AFFILIATE_STAGE)
    with conn.cursor().copy(
        "COPY affiliate_stage (person_id, fresh, gender, location, current_show, subject, "
        "tags, viewers, followers, country, spoken_languages, display_name, birthday, age, "
        "image_url) FROM STDIN"
    ) as copy:
        for name, r in unique.items():
            copy.write_row(
                (
                    ids[name],
                    ids[name] not in seen,
                    r.gender,
                    r.location,
                    r.current_show,
                    r.room_subject,
                    r.tags,
                    r.num_users,
                    r.num_followers,
                    _none_if_empty(r.country),
                    _none_if_empty(r.spoken_languages),
                    _none_if_empty(r.display_name),
                    r.birthday,
                    r.age,
                    r.image_url,
                )
            )
    fresh = [name for name in unique if ids[name] not in seen]
    with conn.cursor().copy(
        sql.SQL("COPY affiliate_api_snapshots ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, SNAPSHOT_COLUMNS))
        )
    ) as copy:
        for name in fresh:
            copy.write_row(snapshot_row(ids[name], observed_at, job_id, unique[name]))
    conn.execute(_AFFILIATE_ROLLUP, {"t": observed_at})
    conn.execute(upsert_latest_sql(_AFFILIATE_LATEST.format(t=sql.Literal(observed_at))))
    # A savepoint that succeeded keeps the table until commit; the next part creates its own.
    conn.execute("DROP TABLE affiliate_stage")
    return WriteResult(inserted=len(fresh), duplicates=len(unique) - len(fresh))


def snapshot_row(
    person_id: int, observed_at: dt.datetime, job_id: int | None, r: AffiliateRoom
) -> tuple[object, ...]:
    """One ``affiliate_api_snapshots`` row, in the order of ``SNAPSHOT_COLUMNS``."""
    return (
        person_id,
        observed_at,
        job_id,
        r.gender,
        r.location,
        r.current_show,
        r.room_subject,
        r.tags,
        r.is_new,
        r.num_users,
        r.num_followers,
        _none_if_empty(r.country),
        _none_if_empty(r.spoken_languages),
        _none_if_empty(r.display_name),
        r.birthday,
        r.is_hd,
        r.age,
        r.seconds_online,
        r.image_url,
        r.image_url_360x270,
        r.chat_room_url_revshare,
        r.iframe_embed_revshare,
        r.chat_room_url,
        r.iframe_embed,
        r.slug,
        r.raw.decode(),
    )


def _upsert_online_persons(
    conn: Connection, names: Iterable[str], seen_online: dt.datetime
) -> dict[str, int]:
    """Creates new persons, moves ``last_seen_online_at`` forward; returns every person's id."""
    rows = conn.execute(
        """
        INSERT INTO persons AS p (username, last_seen_online_at)
        SELECT u, %(seen)s FROM unnest(%(names)s::text[]) AS u
        ON CONFLICT (username) DO UPDATE
        SET last_seen_online_at = GREATEST(p.last_seen_online_at, excluded.last_seen_online_at)
        RETURNING username, person_id
        """,
        {"names": list(names), "seen": seen_online},
    )
    return {str(name): int(person_id) for name, person_id in rows}


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
        " ON CONFLICT (source, completed_at) DO NOTHING",
        [source, completed_at, job_id, rows_seen],
    )


_CBHOURS_STAGE = """
CREATE TEMP TABLE cbhours_stage (
    username text, room_status text, gender text, rank int, grank int, viewers int,
    followers int, current_show text, room_subject text, tags text[], is_new boolean, raw jsonb
) ON COMMIT DROP
"""

_CBHOURS_LATEST = sql.SQL(
    """
    SELECT p.person_id, 'cbhours',
           NULL, NULL, NULL,
           CASE lower(left(s.gender, 1)) WHEN 's' THEN 't' ELSE lower(left(s.gender, 1)) END,
           NULL, NULL, NULL,
           CASE WHEN s.gender IS NOT NULL THEN {t}::timestamptz END,
           lower(s.room_status) = 'online',
           CASE WHEN lower(s.room_status) = 'online' THEN s.current_show ELSE 'offline' END,
           CASE WHEN lower(s.room_status) = 'online' THEN s.viewers ELSE 0 END,
           s.room_subject, {t},
           s.followers, CASE WHEN s.followers IS NOT NULL THEN {t}::timestamptz END,
           s.tags, CASE WHEN s.tags IS NOT NULL THEN {t}::timestamptz END,
           s.rank, s.grank, CASE WHEN s.rank IS NOT NULL THEN {t}::timestamptz END,
           NULL, NULL::timestamptz
    FROM cbhours_stage s JOIN persons p ON p.username = s.username
    """
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
    unique = list({row.username.lower(): row for row in rows}.values())
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        ensure_partitions(conn, "cbhours_live_stats", "day", observed_at, observed_at)
        return store_or_set_aside(
            conn,
            unique,
            lambda part: _write_cbhours_rows(conn, part, observed_at, job_id),
            what="cbhours_live row",
            job_id=job_id,
        )


def _write_cbhours_rows(
    conn: Connection, rows: Sequence[CbhoursLive], observed_at: dt.datetime, job_id: int | None
) -> WriteResult:
    unique = {row.username.lower(): row for row in rows}
    conn.execute(_CBHOURS_STAGE)
    with conn.cursor().copy("COPY cbhours_stage FROM STDIN") as copy:
        for name, r in unique.items():
            copy.write_row(
                (
                    name,
                    r.room_status,
                    r.gender,
                    r.rank,
                    r.grank,
                    r.viewers,
                    r.followers,
                    r.current_show,
                    r.room_subject,
                    r.tags,
                    r.is_new,
                    r.raw.decode(),
                )
            )
    online = {name for name, r in unique.items() if r.online}
    _stage_persons(conn, online, observed_at)
    _stage_persons(conn, unique.keys() - online, None)
    inserted = conn.execute(
        """
        INSERT INTO cbhours_live_stats (person_id, observed_at, job_id, room_status, gender,
            rank, grank, viewers, followers, current_show, room_subject, tags, is_new, raw)
        SELECT p.person_id, %(t)s, %(job)s, s.room_status, s.gender, s.rank, s.grank,
               s.viewers, s.followers, s.current_show, s.room_subject, s.tags, s.is_new, s.raw
        FROM cbhours_stage s JOIN persons p ON p.username = s.username
        ON CONFLICT (person_id, observed_at) DO NOTHING
        """,
        {"t": observed_at, "job": job_id},
    ).rowcount
    conn.execute(
        """
        UPDATE persons p SET has_cbhours_trophy = true, cbhours_trophy_checked_at = %(t)s
        FROM cbhours_stage s WHERE p.username = s.username
          AND (p.cbhours_trophy_checked_at IS NULL OR p.cbhours_trophy_checked_at < %(t)s)
        """,
        {"t": observed_at},
    )
    conn.execute(upsert_latest_sql(_CBHOURS_LATEST.format(t=sql.Literal(observed_at))))
    conn.execute("DROP TABLE cbhours_stage")  # see _write_affiliate_rooms
    return WriteResult(inserted=inserted, duplicates=len(unique) - inserted)


def mark_without_trophy(conn: Connection, usernames: Iterable[str], checked_at: dt.datetime) -> int:
    """Records that CBHours does not track these persons (no trophy), so polls skip them a while."""
    names = sorted({name.lower() for name in usernames})
    with conn.transaction():
        checked_at = database_time(conn, checked_at)
        _stage_persons(conn, names, None)
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
    if not segments and not daily:
        return WriteResult(0, 0)
    rows: list[ActivitySegment | DailyActivity] = [*segments, *daily]
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        if segments:
            times = [s.segment_at for s in segments]
            ensure_partitions(conn, "cbhours_activity", "month", min(times), max(times))
        return store_or_set_aside(
            conn,
            rows,
            lambda part: _write_activity_rows(conn, part, observed_at, job_id),
            what="cbhours_activity row",
            job_id=job_id,
        )


def _write_activity_rows(
    conn: Connection,
    rows: Sequence[ActivitySegment | DailyActivity],
    observed_at: dt.datetime,
    job_id: int | None,
) -> WriteResult:
    segments = [row for row in rows if isinstance(row, ActivitySegment)]
    daily = [row for row in rows if isinstance(row, DailyActivity)]
    _stage_persons(conn, {row.username.lower() for row in rows}, None)
    conn.execute(
        "CREATE TEMP TABLE activity_stage (username text, segment_at timestamptz, type text, "
        "rank int, grank int, followers int, viewers int, gender text) ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY activity_stage FROM STDIN") as copy:
        for s in segments:
            copy.write_row(
                (
                    s.username.lower(),
                    s.segment_at,
                    s.type,
                    s.rank,
                    s.grank,
                    s.followers,
                    s.viewers,
                    s.gender,
                )
            )
    inserted = conn.execute(
        """
        INSERT INTO cbhours_activity AS a (person_id, segment_at, type, rank, grank, followers,
                                           viewers, gender, observed_at, job_id)
        SELECT DISTINCT ON (p.person_id, s.segment_at) p.person_id, s.segment_at, s.type,
               s.rank, s.grank, s.followers, s.viewers, s.gender, %(t)s, %(job)s
        FROM activity_stage s JOIN persons p ON p.username = s.username
        ON CONFLICT (person_id, segment_at) DO UPDATE SET
            type = excluded.type, rank = excluded.rank, grank = excluded.grank,
            followers = excluded.followers, viewers = excluded.viewers,
            gender = excluded.gender, observed_at = excluded.observed_at,
            job_id = excluded.job_id
        WHERE (a.type, a.rank, a.grank, a.followers, a.viewers, a.gender)
              IS DISTINCT FROM (excluded.type, excluded.rank, excluded.grank,
                                excluded.followers, excluded.viewers, excluded.gender)
        """,
        {"t": observed_at, "job": job_id},
    ).rowcount
    conn.execute("DROP TABLE activity_stage")  # see _write_affiliate_rooms
    for d in daily:
        conn.execute(
            """
            INSERT INTO cbhours_daily_activity AS d
                (person_id, day, online_minutes, tzo, observed_at, job_id)
            SELECT person_id, %(day)s, %(minutes)s, %(tzo)s, %(t)s, %(job)s
            FROM persons WHERE username = %(name)s
            ON CONFLICT (person_id, day) DO UPDATE SET
                online_minutes = excluded.online_minutes, tzo = excluded.tzo,
                observed_at = excluded.observed_at, job_id = excluded.job_id
            WHERE (d.online_minutes, d.tzo)
                  IS DISTINCT FROM (excluded.online_minutes, excluded.tzo)
            """,
            {
                "day": d.day,
                "minutes": d.online_minutes,
                "tzo": d.tzo,
                "t": observed_at,
                "job": job_id,
                "name": d.username.lower(),
            },
        )
    return WriteResult(inserted=inserted, duplicates=len(segments) - inserted)
