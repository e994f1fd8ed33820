"""The cbhours_activity spider: decoding, backfill windows, and whole crawls into the database."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from formats.cbhours import (
    WINDOW_DAYS,
    backfill_windows,
    decode_activity,
    decode_months,
    parse_daily_total,
)
from roomwatch.errors import DecodeError
from tests.spiders.cbhours_support import (
    add_persons,
    api_requests,
    cbhours_config,
    params,
    scalar,
)
from tests.support import crawl
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

SAMPLES = Path(__file__).parents[1] / "fixtures" / "doc_examples"
UTC = dt.UTC


def _doc_activity() -> dict[str, Any]:
    body = (SAMPLES / "cbhours_DOCEXAMPLE_get_activity_include_details.json").read_bytes()
    document: dict[str, Any] = json.loads(body)
    return document


def test_parses_daily_totals() -> None:
    assert parse_daily_total("2025-08-12 Tue - 01 Hours 24 Minutes") == (dt.date(2025, 8, 12), 84)
    assert parse_daily_total("2025-08-13 Wed - 24 Hours 00 Minutes")[1] == 1440
    for bad in ("2025-08-12 Tue - 1h 24m", "2025-08-12 Tue - 01 Hours 75 Minutes", ""):
        with pytest.raises(ValueError, match="expected 'YYYY-MM-DD Day - HH Hours MM Minutes'"):
            parse_daily_total(bad)


def test_decodes_the_doc_example_in_utc() -> None:
    body = json.dumps(_doc_activity()).encode()
    answer = decode_activity(body, "model_name", tzo=0)
    assert [(d.day, d.online_minutes, d.tzo) for d in answer.daily] == [
        (dt.date(2025, 8, 12), 84, 0)
    ]
    first, second = answer.segments
    assert first.segment_at == dt.datetime(2025, 8, 12, 22, 36, tzinfo=UTC)
    assert (first.type, first.rank, first.grank, first.followers, first.viewers) == (
        "_public",
        5720,
        4012,
        64829,
        0,
    )
    assert (second.viewers, second.gender) == (3, "f")
    # tzo is minutes from GMT: at -300 (UTC-5), 22:36 local is 03:36 UTC the next day.
    shifted = decode_activity(body, "model_name", tzo=-300)
    assert shifted.segments[0].segment_at == dt.datetime(2025, 8, 13, 3, 36, tzinfo=UTC)
    assert shifted.daily[0].day == dt.date(2025, 8, 12)  # days stay local, labelled with tzo
    assert shifted.daily[0].tzo == -300


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("details", 0, "rank", 5720), "details.2025-08-12[0].rank: expected `str`, got `int`"),
        (("details", 1, "viewers", "3.5"), "details.2025-08-12[1].viewers: expected `str` match"),
        (("details", 0, "timestamp", "2025-08-12 22:36"), "details.2025-08-12[0].timestamp"),
        (("activity", None, None, "1 h"), "activity.2025-08-12: expected 'YYYY-MM-DD Day -"),
        (("activity", None, None, 84), "activity.2025-08-12: expected `str`, got `int`"),
    ],
)
def test_a_wrong_answer_names_the_field(change: tuple[Any, ...], named: str) -> None:
    document = _doc_activity()
    section, index, key, value = change
    if index is None:
        document[section]["2025-08-12"] = value
    else:
        document[section]["2025-08-12"][index][key] = value
    with pytest.raises(DecodeError, match="^" + re.escape(named)):
        decode_activity(json.dumps(document).encode(), "model_name", tzo=0)


def test_error_code_300_and_empty_php_arrays() -> None:
    body = (SAMPLES / "cbhours_DOCEXAMPLE_error_code300.json").read_bytes()
    assert decode_activity(body, "x", 0).no_trophy
    empty = b'{"status": true, "model": "x", "activity": [], "details": []}'
    answer = decode_activity(empty, "x", 0)
    assert (answer.segments, answer.daily, answer.no_trophy) == ([], [], False)


def test_decodes_months() -> None:
    months = decode_months((SAMPLES / "cbhours_DOCEXAMPLE_get_months.json").read_bytes())
    assert months == ["2025-08", "2025-07", "2025-06"]
    assert decode_months(b'{"status": "error", "message": "Error Code:300 ..."}') == []
    with pytest.raises(DecodeError, match=r"^\[1\]: expected `str` matching"):
        decode_months(b'["2025-08", "2025/07"]')


def test_backfill_windows_cover_listed_months_in_60_day_windows() -> None:
    before = dt.date(2025, 8, 10)
    windows = backfill_windows(["2025-08", "2025-07", "2025-06", "2025-05", "2025-01"], before)
    assert all((last - first).days + 1 <= WINDOW_DAYS for first, last in windows)
    days = {
        first + dt.timedelta(days=n)
        for first, last in windows
        for n in range((last - first).days + 1)
    }
    assert len(days) == sum((last - first).days + 1 for first, last in windows)  # disjoint
    # Every day of the listed months before the recent window, plus a day either side...
    assert min(days) == dt.date(2024, 12, 31)
    assert max(days) == dt.date(2025, 8, 9)
    assert dt.date(2025, 5, 1) in days and dt.date(2025, 2, 1) in days
    # ...but not the unlisted months between.
    assert dt.date(2025, 3, 15) not in days and dt.date(2025, 2, 2) not in days
    assert backfill_windows([], before) == []
    assert backfill_windows(["2025-08"], dt.date(2025, 7, 1)) == []


def _requests(sim: SimulatorServer, action: str) -> list[dict[str, str]]:
    return [p for p in map(params, api_requests(sim)) if p["action"] == action]


def test_first_sight_backfills_then_reruns_add_nothing(
    crawl_env: Any,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tzo = -300
    config = cbhours_config(monkeypatch, sim, CBHOURS_TZO=str(tzo))
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    cbhours.add_trophy("alice")
    cbhours.seed_activity("alice", today - dt.timedelta(days=150), today - dt.timedelta(days=2))
    add_persons(db, ["alice", "gone"], has_cbhours_trophy=True)  # gone: no longer in CBHours
    add_persons(db, ["nobody"], has_cbhours_trophy=False)

    job = crawl(config, db_url, "cbhours_activity")
    assert job.status == "succeeded", job.error_message

    activity = _requests(sim, "get_activity")
    assert {p["username"] for p in activity} == {"alice", "gone"}
    assert {p["username"] for p in _requests(sim, "get_months")} == {"alice", "gone"}
    assert all(p["tzo"] == "-300" and p["include_details"] == "true" for p in activity)
    spans = [
        (dt.date.fromisoformat(p["start_date"]), dt.date.fromisoformat(p["end_date"]))
        for p in activity
        if p["username"] == "alice"
    ]
    assert all((last - first).days + 1 <= WINDOW_DAYS for first, last in spans)
    assert len(spans) >= 3  # the recent 60 days and at least two backfill windows

    # Every simulated segment is stored once, at its UTC time; daily totals per local day.
    expected = cbhours.segments("alice")
    stored = {
        row[0]
        for row in db.execute(
            "SELECT segment_at FROM cbhours_activity JOIN persons USING (person_id) "
            "WHERE username = 'alice'"
        )
    }
    assert stored == {s.at for s in expected}
    local_minutes = Counter((s.at + dt.timedelta(minutes=tzo)).date() for s in expected)
    daily = dict(
        db.execute(
            "SELECT day, online_minutes FROM cbhours_daily_activity "
            "JOIN persons USING (person_id) WHERE username = 'alice' AND tzo = -300"
        ).fetchall()
    )
    assert daily == {day: n * 3 for day, n in local_minutes.items()}
    assert job.items["cbhours_activity"] == len(expected)
    assert scalar(db, "SELECT has_cbhours_trophy FROM persons WHERE username = 'gone'") is False

    # Seen before: no backfill, and the same answers write nothing new.
    sim.state.requests.clear()
    again = crawl(config, db_url, "cbhours_activity")
    assert again.status == "succeeded", again.error_message
    assert [p["username"] for p in _requests(sim, "get_activity")] == ["alice"]
    assert _requests(sim, "get_months") == []
    assert again.items.get("cbhours_activity", 0) == 0
    assert scalar(db, "SELECT count(*) FROM cbhours_activity") == len(expected)


def test_a_malformed_answer_fails_the_job_and_keeps_the_others(
    crawl_env: Any,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = cbhours_config(monkeypatch, sim)
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    for name in ("amy", "bea"):
        cbhours.add_trophy(name)
        cbhours.seed_activity(name, today - dt.timedelta(days=20), today, online_chance=1.0)
    add_persons(db, ["amy", "bea"], has_cbhours_trophy=True)
    sim.state.faults.set([FaultRule(prefix="/api.php", malformed="wrong_type", field="rank")])

    job = crawl(config, db_url, "cbhours_activity")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("get_activity amy ")
    assert "[0].rank: expected `str`, got `int`" in job.error_message
    per_person = dict(
        db.execute(
            "SELECT username, count(a.*) FROM persons LEFT JOIN cbhours_activity a "
            "USING (person_id) GROUP BY username"
        ).fetchall()
    )
    assert per_person["amy"] == 0
    assert per_person["bea"] == len(cbhours.segments("bea"))


def test_impossible_months_are_decode_errors_and_far_ones_harmless() -> None:
    with pytest.raises(DecodeError, match=r"^\[1\]: expected a real month YYYY-MM, got '2025-13'"):
        decode_months(b'["2025-11", "2025-13"]')
    # 9999-12 has no following month: computing it ended the crawl with an OverflowError.
    months = decode_months(b'["9999-12", "2025-01", "0001-01"]')
    windows = backfill_windows(months, dt.date(2025, 6, 1))
    assert windows[-1] == (dt.date(2024, 12, 31), dt.date(2025, 2, 1))
    assert windows[0][0] == dt.date(1, 1, 1)


def test_an_impossible_time_is_a_decode_error_naming_the_field() -> None:
    body = json.dumps(
        {
            "status": True,
            "activity": {},
            "details": {
                "2025-02-28": [
                    {"timestamp": "2025-02-28T10:00", "type": "public", "rank": "1",
                     "grank": "1", "followers": "1", "viewers": "1"},
                    {"timestamp": "2025-02-30T10:00", "type": "public", "rank": "1",
                     "grank": "1", "followers": "1", "viewers": "1"},
                ]
            },
        }
    ).encode()  # fmt: skip
    with pytest.raises(DecodeError, match=r"^details\.2025-02-28\[1\]\.timestamp: .*2025-02-30"):
        decode_activity(body, "amy", 0)


def test_an_impossible_date_from_upstream_fails_the_job_naming_the_field(
    crawl_env: Any,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: the ValueError escaped the callback as a spider error and the job succeeded.
    config = cbhours_config(monkeypatch, sim)
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    for name in ("amy", "bea"):
        cbhours.add_trophy(name)
        cbhours.seed_activity(name, today - dt.timedelta(days=20), today, online_chance=1.0)
    add_persons(db, ["amy", "bea"], has_cbhours_trophy=True)
    sim.state.faults.set(
        [
            FaultRule(
                prefix="/api.php",
                malformed="set_value",
                field="timestamp",
                value="2025-02-30T10:00",
            )
        ]
    )
    job = crawl(config, db_url, "cbhours_activity", usernames="amy,bea")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("get_activity amy ")
    assert re.search(r"details\.[0-9-]+\[0\]\.timestamp: .*'2025-02-30T10:00'", job.error_message)
    assert scalar(db, "SELECT count(*) FROM cbhours_activity") == len(cbhours.segments("bea"))
