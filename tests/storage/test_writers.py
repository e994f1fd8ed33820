"""Writers: idempotent rewrites, de-duplication, complete vs partial polls, CBHours trophies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from formats.cbhours import decode_live
from formats.stats import decode_stats
from storage.records import ActivitySegment, AffiliateRoom, DailyActivity
from storage.writers import (
    mark_without_trophy,
    write_affiliate_poll,
    write_cbhours_activity,
    write_cbhours_live,
    write_room_stats,
)
from tests.factories import room, sample_rooms

# Records as the spiders hand them over: decoded (and so cleaned) from real answers.
LIVE = Path(__file__).parents[1] / "fixtures/doc_examples/cbhours_DOCEXAMPLE_get_live.json"


def _count(conn: psycopg.Connection[Any], query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def test_rewriting_a_poll_adds_nothing(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    rooms = sample_rooms()
    first = write_affiliate_poll(db, rooms, observed_at=now)
    second = write_affiliate_poll(db, rooms, observed_at=now)
    assert (first.inserted, second.inserted, second.duplicates) == (50, 0, 50)
    assert _count(db, "SELECT count(*) FROM affiliate_api_snapshots") == 50
    assert _count(db, "SELECT sum(samples) FROM affiliate_hourly") == 50
    assert _count(db, "SELECT count(*) FROM persons") == 50
    raw = db.execute(
        "SELECT raw FROM affiliate_api_snapshots a JOIN persons USING (person_id) "
        "WHERE username = 'amberotter00'"
    ).fetchone()
    assert raw is not None and raw[0]["iframe_embed"].startswith("<iframe")


def test_tags_with_quotes_commas_braces_and_backslashes_arrive_as_sent(
    db: psycopg.Connection[Any],
) -> None:
    # The COPY carries tags as text[] literals (tables.text_array); person_source_latest reads
    # them back from the snapshots.
    tags = ['say "hi"', "a,b", "{braces}", "back\\slash", "NULL", "", "ünïcode 💜"]
    write_affiliate_poll(db, [room("tagger", tags=tags)], observed_at=dt.datetime.now(dt.UTC))
    latest = db.execute("SELECT tags FROM person_source_latest").fetchone()
    snapshot = db.execute("SELECT tags FROM affiliate_api_snapshots").fetchone()
    assert latest == snapshot == (tags,)


def test_hourly_rollup_partitions_leave_room_for_in_place_updates(
    db: psycopg.Connection[Any],
) -> None:
    # Every poll of an hour updates that hour's row of each person online (migration 0024).
    write_affiliate_poll(db, sample_rooms(5), observed_at=dt.datetime.now(dt.UTC))
    options = db.execute(
        "SELECT c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'affiliate_hourly'::regclass"
    ).fetchall()
    assert options == [(["fillfactor=50"],)]


def test_a_username_seen_twice_in_one_poll_is_stored_once(db: psycopg.Connection[Any]) -> None:
    rooms = sample_rooms(3)
    later = AffiliateRoom(
        **{**{f: getattr(rooms[0], f) for f in rooms[0].__struct_fields__}, "num_users": 4242}
    )
    result = write_affiliate_poll(db, [*rooms, later], observed_at=dt.datetime.now(dt.UTC))
    assert result.inserted == 3
    assert (
        _count(
            db,
            "SELECT num_users FROM affiliate_api_snapshots a JOIN persons p "
            "USING (person_id) WHERE username = %s",
            rooms[0].username,
        )
        == 4242
    )


def test_only_a_complete_poll_concludes_absent_persons_are_offline(
    db: psycopg.Connection[Any],
) -> None:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    rooms = sample_rooms(10)
    write_affiliate_poll(db, rooms, observed_at=t0, complete=True)
    gone = rooms[0].username
    online = "SELECT online, live_source FROM v_person_current_state WHERE username = %s"
    write_affiliate_poll(db, rooms[1:], observed_at=t0 + dt.timedelta(minutes=1), complete=False)
    assert db.execute(online, [gone]).fetchone() == (True, "affiliate")
    write_affiliate_poll(db, rooms[1:], observed_at=t0 + dt.timedelta(minutes=2), complete=True)
    assert db.execute(online, [gone]).fetchone() == (False, "affiliate")
    assert _count(db, "SELECT count(*) FROM source_polls WHERE source = 'affiliate'") == 2
    # A complete poll that lists no room at all: everyone it had seen is offline.
    write_affiliate_poll(db, [], observed_at=t0 + dt.timedelta(minutes=3), complete=True)
    assert db.execute(online, [rooms[1].username]).fetchone() == (False, "affiliate")


def _last_seen(conn: psycopg.Connection[Any], username: str) -> tuple[Any, ...]:
    """When ``username`` was last seen online: merged (view), listed (summary), kept (persons)."""
    row = conn.execute(
        "SELECT v.last_seen_online_at, s.last_seen_online_at, p.last_seen_online_at"
        " FROM persons p JOIN person_summary s USING (person_id)"
        " JOIN v_person_current_state v USING (person_id) WHERE p.username = %s",
        [username],
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_polls_of_persons_online_write_no_persons_row_and_last_seen_follows(
    db: psycopg.Connection[Any],
) -> None:
    """A person who stays online is last seen at the newest poll without a persons write; one
    who leaves keeps the last poll that listed them, in persons (where it no longer changes)."""
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    stays, leaves = room("stays"), room("leaves")
    write_affiliate_poll(db, [stays, leaves], observed_at=t0, complete=True)
    assert _last_seen(db, "stays") == (t0, t0, None)
    version = "SELECT xmin::text FROM persons WHERE username = 'stays'"
    before = db.execute(version).fetchone()
    t1, t2 = t0 + dt.timedelta(minutes=3), t0 + dt.timedelta(minutes=6)
    write_affiliate_poll(db, [stays, leaves], observed_at=t1, complete=True)
    write_affiliate_poll(db, [stays], observed_at=t2, complete=True)
    assert db.execute(version).fetchone() == before
    assert _last_seen(db, "stays") == (t2, t2, None)
    assert _last_seen(db, "leaves") == (t1, t1, t1)
    # Coming back online, then a CBHours answer saying offline: the sighting is kept too.
    t3 = t0 + dt.timedelta(minutes=8)
    write_affiliate_poll(db, [leaves], observed_at=t3)
    offline = msgspec.structs.replace(decode_live(LIVE.read_bytes()).rows[1], username="leaves")
    write_cbhours_live(db, [offline], observed_at=t3 + dt.timedelta(seconds=30))
    assert _last_seen(db, "leaves") == (t3, t3, t1)
    write_affiliate_poll(db, [], observed_at=t0 + dt.timedelta(minutes=9), complete=True)
    assert _last_seen(db, "leaves") == (t3, t3, t3)


def test_empty_strings_mean_not_set(db: psycopg.Connection[Any]) -> None:
    rooms = [r for r in sample_rooms(500) if r.country is None and r.display_name is None][:1]
    assert rooms, "the sample has rooms without country and display name"
    write_affiliate_poll(db, rooms, observed_at=dt.datetime.now(dt.UTC))
    row = db.execute(
        "SELECT country, display_name, display_name_source FROM v_person_current_state"
    ).fetchone()
    assert row == (None, None, None)


def test_cbhours_live_marks_trophies_and_feeds_rank(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = decode_live(LIVE.read_bytes()).rows  # model1 (gender "Female"), model2 offline
    assert write_cbhours_live(db, rows, observed_at=now).inserted == 2
    assert write_cbhours_live(db, rows, observed_at=now).inserted == 0
    mark_without_trophy(db, ["nobody"], now)
    trophies = dict(db.execute("SELECT username, has_cbhours_trophy FROM persons").fetchall())
    assert trophies == {"model1": True, "model2": True, "nobody": False}
    state = db.execute(
        "SELECT rank, grank, followers, followers_source, gender, online "
        "FROM v_person_current_state WHERE username = 'model1'"
    ).fetchone()
    assert state == (123, 45, 54321, "cbhours", "f", True)
    offline = db.execute(
        "SELECT online, viewers, live_source FROM v_person_current_state WHERE username = 'model2'"
    ).fetchone()
    assert offline == (False, 0, "cbhours")


def test_activity_upserts_per_person_and_time(db: psycopg.Connection[Any]) -> None:
    at = dt.datetime(2025, 8, 12, 22, 36, tzinfo=dt.UTC)
    segment = ActivitySegment(
        username="m",
        segment_at=at,
        type="_public",
        rank=5720,
        grank=4012,
        followers=64829,
        viewers=0,
        gender="f",
    )
    day = DailyActivity(username="m", day=at.date(), online_minutes=84, tzo=-300)
    now = dt.datetime.now(dt.UTC)
    assert write_cbhours_activity(db, [segment], [day], observed_at=now).inserted == 1
    assert write_cbhours_activity(db, [segment], [day], observed_at=now).inserted == 0
    changed = ActivitySegment(
        **{**{f: getattr(segment, f) for f in segment.__struct_fields__}, "viewers": 3}
    )
    assert write_cbhours_activity(db, [changed], [], observed_at=now).inserted == 1
    assert _count(db, "SELECT count(*) FROM cbhours_activity") == 1
    assert _count(db, "SELECT viewers FROM cbhours_activity") == 3
    assert _count(db, "SELECT online_minutes FROM cbhours_daily_activity") == 84


def test_a_refused_row_is_set_aside_and_the_rest_of_its_batch_stored(
    db: psycopg.Connection[Any],
) -> None:
    # One row the database refuses (a CHECK on the username) used to fail the whole batch;
    # storage/guards.py and tests/storage/test_guards.py cover the other kinds of refusal.
    rooms = sample_rooms(5)
    bad = AffiliateRoom(
        **{
            **{f: getattr(rooms[0], f) for f in rooms[0].__struct_fields__},
            "username": "",
            "raw": b"{}",
        }
    )
    result = write_affiliate_poll(db, [*rooms[1:], bad], observed_at=dt.datetime.now(dt.UTC))
    assert (result.inserted, result.set_aside) == (4, ("",))
    assert _count(db, "SELECT count(*) FROM persons") == 4
    assert _count(db, "SELECT count(*) FROM affiliate_api_snapshots") == 4


STATS = Path(__file__).parents[1] / "fixtures/doc_examples"


def test_a_stats_answer_is_stored_once_with_unknowns_as_null(db: psycopg.Connection[Any]) -> None:
    row = decode_stats((STATS / "statsapi_DOCEXAMPLE_offline.json").read_bytes())
    now = dt.datetime.now(dt.UTC)
    assert write_room_stats(db, row, observed_at=now, job_id=7) == 1
    assert write_room_stats(db, row, observed_at=now, job_id=7) == 0  # the same answer again
    stored = db.execute(
        "SELECT account, observed_at, job_id, num_followers, token_balance, votes_up, "
        "num_viewers, tips_in_last_hour, last_broadcast, time_online, raw FROM room_stats"
    ).fetchall()
    assert len(stored) == 1
    account, observed_at, job_id, followers, balance, votes_up, *unknown, raw = stored[0]
    assert (account, observed_at, job_id) == ("owner_room", now, 7)
    assert (followers, balance, votes_up) == (2531, 1520, 212)
    assert unknown == [None, None, None, None]  # -1 in the answer
    assert raw["new_field_of_the_site"] == {"any": "thing"}

    later = decode_stats((STATS / "statsapi_DOCEXAMPLE_broadcasting.json").read_bytes())
    assert write_room_stats(db, later, observed_at=now + dt.timedelta(minutes=5)) == 1
    assert _count(db, "SELECT count(*) FROM room_stats") == 2
    assert _count(
        db, "SELECT last_broadcast IS NOT NULL FROM room_stats ORDER BY observed_at DESC LIMIT 1"
    )


def test_the_owners_follower_count_shows_with_its_source(db: psycopg.Connection[Any]) -> None:
    row = decode_stats((STATS / "statsapi_DOCEXAMPLE_broadcasting.json").read_bytes())
    now = dt.datetime.now(dt.UTC)
    write_room_stats(db, row, observed_at=now)  # the owner's person did not exist
    merged = db.execute(
        "SELECT followers, followers_source, followers_observed_at FROM v_person_current_state "
        "WHERE username = 'owner_room'"
    ).fetchone()
    assert merged == (2531, "stats_api", now)
    unknown = msgspec.structs.replace(row, num_followers=None)
    write_room_stats(db, unknown, observed_at=now + dt.timedelta(minutes=5))
    latest = db.execute(
        "SELECT followers, followers_at FROM person_source_latest WHERE source = 'stats_api'"
    ).fetchall()
    assert latest == [(2531, now)]  # an unknown count does not replace a known one
