"""The Affiliate feed's format: real pages decoded, odd values read as documented, a wrong type
named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from formats.affiliate import decode_page
from roomwatch.errors import PageError

SAMPLES = Path(__file__).parents[1] / "fixtures"


def test_decodes_the_real_2025_page() -> None:
    body = (SAMPLES / "affiliate_onlinerooms_2025-09-06_region-asia_FULL.json").read_bytes()
    rooms, count = decode_page(body)
    assert count == json.loads(body)["count"]
    assert len(rooms) == 60  # trimmed from the 500 of the sample
    sky = next(r for r in rooms if r.username == "amberotter00")
    assert (sky.age, sky.birthday.isoformat() if sky.birthday else None) == (29, "1996-08-12")
    assert sky.country is None  # "" means not set
    trisha = next(r for r in rooms if r.username == "briskotter")
    assert trisha.age is None and trisha.birthday is None
    assert json.loads(trisha.raw)["iframe_embed"].startswith("<iframe")


def test_decodes_the_legacy_bare_array_and_keeps_unknown_fields() -> None:
    body = (SAMPLES / "affiliate_onlinerooms_LEGACY_2017_bare-array_EXS-fixture.json").read_bytes()
    rooms, count = decode_page(body)
    assert count is None
    assert rooms
    assert json.loads(rooms[0].raw)["recorded"] == "false"  # not in our columns, kept raw


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"num_users": "12"}, "room 0: num_users: expected `int`, got `str`"),
        ({"tags": "a"}, "room 0: tags: expected `array`, got `str`"),
        ({"birthday": "12/08/1996"}, "room 0: birthday: expected YYYY-MM-DD"),
        ({"age": "29"}, "room 0: age: expected `int | null`, got `str`"),
    ],
)
def test_a_wrong_type_names_the_field(change: dict[str, Any], named: str) -> None:
    room = {
        "username": "a",
        "gender": "s",
        "current_show": "public",
        "num_users": 1,
        "num_followers": 2,
        "tags": [],
        **change,
    }
    with pytest.raises(PageError, match="^" + named.replace("|", r"\|")):
        decode_page(json.dumps({"results": [room], "count": 1}).encode())


def test_odd_values_are_read_as_documented() -> None:
    room = {
        "username": "Mixed",
        "gender": "s",
        "current_show": "public",
        "num_users": 1,
        "num_followers": 2,
        "tags": ["A"],
        "spoken_languages": "English, Russian",
        "country": "",
        "display_name": "",
        "birthday": "",
        "age": None,
        "new_field": 1,
    }
    [record], _ = decode_page(json.dumps({"count": 1, "results": [room]}).encode())
    assert (record.username, record.gender, record.tags) == ("mixed", "t", ["a"])
    assert record.spoken_languages == "English, Russian"
    assert (record.country, record.display_name, record.birthday) == (None, None, None)
    assert json.loads(record.raw)["new_field"] == 1


def test_unstorable_text_is_dropped_from_strings_and_raw() -> None:
    room = (
        b'{"username":"A\\u0000b","gender":"f","current_show":"public","num_users":1,'
        b'"num_followers":2,"room_subject":"hi\\u0000 \\ud800there\\udc00","tags":["x\\u0000"]}'
    )
    rooms, count = decode_page(b'{"count":1,"results":[' + room + b"]}")
    assert count == 1
    (record,) = rooms
    assert (record.username, record.room_subject, record.tags) == ("ab", "hi there", ["x"])
    assert b"\\u0000" not in record.raw and b"\\ud800" not in record.raw
    assert json.loads(record.raw)["room_subject"] == "hi there"
