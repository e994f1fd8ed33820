"""Writers: idempotent rewrites, de-duplication, complete vs partial polls, CBHours trophies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from formats.cbhours import decode_live
from storage.records import ActivitySegment, AffiliateRoom, DailyActivity
from storage.writers import (
    mark_without_trophy,
    write_affiliate_poll,
    write_cbhours_activity,
    write_cbhours_live,
)
from tests.factories import sample_rooms

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
