"""The CBHours API's format: get_live, get_activity and get_months decoded strictly, and the
backfill's windows."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from formats.cbhours import (
    WINDOW_DAYS,
    backfill_windows,
    decode_activity,
    decode_live,
    decode_months,
    parse_daily_total,
)
from roomwatch.errors import DecodeError, UpstreamError

SAMPLES = Path(__file__).parents[1] / "fixtures" / "doc_examples"


ONLINE = {
    "room_status": "Online",
    "gender": "Female",
    "rank": 1,
    "grank": 2,
    "viewers": 3,
    "followers": 4,
    "current_show": "public",
    "room_subject": "hi",
    "tags": ["A"],
    "is_new": False,
}


def _live(**rows: Any) -> bytes:
    return json.dumps({"server_status": "up", "data": rows}).encode()


def test_decodes_the_doc_example() -> None:
    answer = decode_live((SAMPLES / "cbhours_DOCEXAMPLE_get_live.json").read_bytes())
    online, offline = answer.rows
    assert (online.username, online.room_status, online.rank, online.grank) == (
        "model1",
        "Online",
        123,
        45,
    )
    assert (online.viewers, online.followers, online.current_show) == (1024, 54321, "public")
    assert online.tags == ["new", "ebony", "pvt"]
    assert (online.room_subject or "").startswith("GOAL: [304 tokens remaining]")
    assert (offline.username, offline.room_status, offline.rank, offline.tags) == (
        "model2",
        "Offline",
        None,
        None,
    )
    assert json.loads(offline.raw) == {"room_status": "Offline"}


def test_error_code_300_means_no_trophy() -> None:
    answer = decode_live((SAMPLES / "cbhours_DOCEXAMPLE_error_code300.json").read_bytes())
    assert answer.no_trophy
    assert answer.rows == []


def test_tolerates_unknown_fields_and_an_empty_php_array() -> None:
    [row] = decode_live(_live(Model3={**ONLINE, "new_field": 1})).rows
    assert (row.username, row.tags, row.gender) == ("model3", ["a"], "f")  # from "Female"
    assert json.loads(row.raw)["new_field"] == 1
    assert decode_live(b'{"server_status": "up", "data": []}').rows == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (_live(m={**ONLINE, "viewers": "3"}), "data.m.viewers: expected `int`, got `str`"),
        (_live(m={**ONLINE, "tags": "a"}), "data.m.tags: expected `array`, got `str`"),
        (_live(m={"room_status": "Away"}), "data.m.room_status: invalid value 'Away'"),
        (_live(m={"room_status": "Online"}), "data.m: object missing required field `rank`"),
        (b'{"server_status": "up"}', "data: object missing required field"),
        (b'{"server_status": "up", "data": 5}', "data: expected `object | array | null`"),
        (b'{"server_status": "up", "da', "body: not JSON"),
    ],
)
def test_a_wrong_live_answer_names_the_field(body: bytes, named: str) -> None:
    with pytest.raises(DecodeError, match="^" + named.replace("|", r"\|")):
        decode_live(body)


def test_an_unknown_error_answer_is_not_taken_for_no_trophy() -> None:
    with pytest.raises(UpstreamError, match="error answer: Error Code:999"):
        decode_live(b'{"status": "error", "message": "Error Code:999 down"}')


# get_activity and get_months


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
def test_a_wrong_activity_answer_names_the_field(change: tuple[Any, ...], named: str) -> None:
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
