"""Writers under bad rows and wrong clocks: refused rows are set aside, future times clamped."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from roomwatch.config import DatabaseConfig
from storage import maintenance
from storage.guards import CLOCK_MARGIN
from storage.records import ActivitySegment, CbhoursLive, DailyActivity
from storage.writers import (
    mark_without_trophy,
    write_affiliate_poll,
    write_cbhours_activity,
    write_cbhours_live,
)
from tests.factories import room

UTC = dt.UTC


def _scalar(db: psycopg.Connection[Any], query: str, *params: object) -> Any:
    row = db.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _online(db: psycopg.Connection[Any], name: str) -> Any:
    return _scalar(
        db,
        "SELECT l.online FROM person_source_latest l JOIN persons USING (person_id) "
        "WHERE username = %s AND source = 'affiliate'",
        name,
    )


def test_rows_the_database_refuses_are_set_aside_and_the_rest_stored(
    db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    rooms = [room(f"r{n:03}") for n in range(100)]
    # Values the decoders let through: an age beyond smallint, a JSON text jsonb refuses,
    # and a NUL that reached a writer by another way than a decoder.
    rooms[17] = room("r017", age=99999)
    rooms[42] = room("r042", raw=b'{"s": "\\u0000"}')
    rooms[80] = room("r080", room_subject="a\x00b")
    with caplog.at_level(logging.WARNING, logger="storage.guards"):
        result = write_affiliate_poll(
            db, rooms, observed_at=dt.datetime.now(UTC), job_id=None, complete=True
        )
    assert sorted(result.set_aside) == ["r017", "r042", "r080"]
    assert (result.inserted, result.duplicates) == (97, 0)
    assert _scalar(db, "SELECT count(*) FROM affiliate_api_snapshots") == 97
    assert _scalar(db, "SELECT count(*) FROM persons WHERE username IN ('r017', 'r042')") == 0
    assert _scalar(db, "SELECT sum(samples) FROM affiliate_hourly") == 97
    assert _scalar(db, "SELECT count(*) FROM source_polls") == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "affiliate room r017 set aside" in logged and "out of range" in logged
    assert "affiliate room r080 set aside" in logged


def test_a_batch_whose_every_row_is_refused_still_fails(db: psycopg.Connection[Any]) -> None:
    # Then no row is at fault (a broken statement would refuse them all): nothing is hidden.
    rooms = [room("a", age=99999), room("b", age=99999), room("c", age=-99999)]
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        write_affiliate_poll(db, rooms, observed_at=dt.datetime.now(UTC), complete=True)
    db.rollback()
    assert _scalar(db, "SELECT count(*) FROM persons") == 0
    assert _scalar(db, "SELECT count(*) FROM source_polls") == 0


def test_a_complete_poll_does_not_conclude_a_set_aside_room_offline(
    db: psycopg.Connection[Any],
) -> None:
    t0 = dt.datetime.now(UTC) - dt.timedelta(minutes=3)
    write_affiliate_poll(db, [room("kept"), room("refused"), room("gone")], observed_at=t0)
    db.commit()
    later = t0 + dt.timedelta(minutes=1)
    result = write_affiliate_poll(
        db, [room("kept"), room("refused", age=-40000)], observed_at=later, complete=True
    )
    assert result.set_aside == ("refused",)
    # Seen by the poll, though not stored: not concluded offline. Absent: offline.
    assert (_online(db, "kept"), _online(db, "refused"), _online(db, "gone")) == (
        True,
        True,
        False,
    )


def test_cbhours_rows_the_database_refuses_are_set_aside(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(UTC)
    rows = [
        CbhoursLive(username="fine", room_status="Online", rank=1, grank=2, viewers=3,
                    followers=4, current_show="public", room_subject="s", tags=[]),
        CbhoursLive(username="huge", room_status="Online", rank=2**40, grank=2, viewers=3,
                    followers=4, current_show="public", room_subject="s", tags=[]),
    ]  # fmt: skip
    result = write_cbhours_live(db, rows, observed_at=now)
    assert (result.inserted, result.set_aside) == (1, ("huge",))
    segment = ActivitySegment(
        username="fine", segment_at=now, type="public", rank=1, grank=1, followers=1,
        viewers=2**40, gender=None,
    )  # fmt: skip
    good = ActivitySegment(
        username="fine", segment_at=now - dt.timedelta(minutes=3), type="public", rank=1,
        grank=1, followers=1, viewers=1, gender=None,
    )  # fmt: skip
    day = DailyActivity(username="fine", day=now.date(), online_minutes=3, tzo=0)
    result = write_cbhours_activity(db, [segment, good], [day], observed_at=now)
    assert (result.inserted, result.set_aside) == (1, ("fine",))
    assert _scalar(db, "SELECT count(*) FROM cbhours_daily_activity") == 1


def test_an_observation_from_the_future_is_stored_at_the_database_time(
    db: psycopg.Connection[Any],
) -> None:
    skewed = dt.datetime.now(UTC) + dt.timedelta(days=3)  # a crawl machine's wrong clock
    write_affiliate_poll(db, [room("early")], observed_at=skewed, complete=True)
    write_cbhours_live(db, [CbhoursLive(username="cb", room_status="Offline")], observed_at=skewed)
    mark_without_trophy(db, ["nocb"], skewed)
    db.commit()
    db_now = _scalar(db, "SELECT now()")
    latest = _scalar(db, "SELECT max(live_at) FROM person_source_latest")
    stamps = [
        _scalar(db, "SELECT max(observed_at) FROM affiliate_api_snapshots"),
        _scalar(db, "SELECT max(completed_at) FROM source_polls"),
        _scalar(db, "SELECT max(observed_at) FROM cbhours_live_stats"),
        _scalar(db, "SELECT max(cbhours_trophy_checked_at) FROM persons"),
        latest,
    ]
    assert all(stamp <= db_now for stamp in stamps), stamps
    # A later, truthful observation is newer than the clamped one and wins.
    write_affiliate_poll(db, [room("early", num_users=77)], observed_at=dt.datetime.now(UTC))
    assert _scalar(db, "SELECT viewers FROM person_source_latest WHERE source = 'affiliate'") == 77


def test_a_small_skew_within_the_margin_is_kept(db: psycopg.Connection[Any]) -> None:
    ahead = dt.datetime.now(UTC) + CLOCK_MARGIN / 2
    write_affiliate_poll(db, [room("a")], observed_at=ahead)
    write_affiliate_poll(db, [room("b")], observed_at=ahead)  # a poll stays one time
    assert _scalar(db, "SELECT count(DISTINCT observed_at) FROM affiliate_api_snapshots") == 1
    assert _scalar(db, "SELECT max(observed_at) FROM affiliate_api_snapshots") == ahead


class _ClockAYearBehind(dt.datetime):
    """This process's clock, wrong: a year behind the database's."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _ClockAYearBehind:  # type: ignore[override]
        real = dt.datetime.now(tz) - dt.timedelta(days=365)
        return cls.fromtimestamp(real.timestamp(), tz)


def test_retention_cuts_off_by_the_database_clock(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_affiliate_poll(db, [room("a")], observed_at=dt.datetime.now(UTC) - dt.timedelta(days=5))
    write_affiliate_poll(db, [room("a")], observed_at=dt.datetime.now(UTC))
    db.commit()
    # The process clock as storage.maintenance sees it; the database's own clock is untouched.
    skewed = SimpleNamespace(datetime=_ClockAYearBehind, timedelta=dt.timedelta, UTC=UTC)
    monkeypatch.setattr(maintenance, "dt", skewed)
    settings = DatabaseConfig(snapshot_retention_days=2, rollup_retention_days=400)
    assert len(maintenance.apply_retention(db, settings)) == 1  # the 5-day-old partition
    assert _scalar(db, "SELECT count(*) FROM affiliate_api_snapshots") == 1
