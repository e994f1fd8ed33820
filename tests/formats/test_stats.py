"""The Stats API's format (FORMATS.md §6.2): one answer decoded, -1 as unknown, strictly."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from formats.stats import decode_stats
from roomwatch.errors import DecodeError

SAMPLES = Path(__file__).parents[1] / "fixtures" / "doc_examples"


def _answer(**changes: Any) -> bytes:
    body = json.loads((SAMPLES / "statsapi_DOCEXAMPLE_broadcasting.json").read_bytes())
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_decodes_an_answer_while_broadcasting() -> None:
    body = (SAMPLES / "statsapi_DOCEXAMPLE_broadcasting.json").read_bytes()
    row = decode_stats(body)
    assert row.username == "owner_room"  # lower case, as persons hold names
    assert (row.num_followers, row.num_viewers) == (2531, 88)
    assert (row.num_registered_viewers, row.num_tokened_viewers) == (61, 23)
    assert (row.token_balance, row.tips_in_last_hour) == (1520, 35)
    assert (row.votes_up, row.votes_down, row.satisfaction_score) == (212, 9, 96)
    assert row.time_online == 47
    # No time zone given: read as UTC.
    assert row.last_broadcast == dt.datetime(2026, 3, 1, 19, 42, 10, 123456, tzinfo=dt.UTC)
    assert json.loads(row.raw) == json.loads(body)


def test_minus_one_is_unknown_and_unknown_fields_are_kept() -> None:
    body = (SAMPLES / "statsapi_DOCEXAMPLE_offline.json").read_bytes()
    row = decode_stats(body)
    assert (row.num_viewers, row.num_registered_viewers, row.num_tokened_viewers) == (
        None,
        None,
        None,
    )
    assert (row.tips_in_last_hour, row.time_online, row.last_broadcast) == (None, None, None)
    assert (row.num_followers, row.token_balance, row.votes_up) == (2531, 1520, 212)
    assert json.loads(row.raw)["new_field_of_the_site"] == {"any": "thing"}


@pytest.mark.parametrize(
    "field",
    [
        "num_followers",
        "num_viewers",
        "num_registered_viewers",
        "num_tokened_viewers",
        "token_balance",
        "tips_in_last_hour",
        "votes_up",
        "votes_down",
        "satisfaction_score",
        "time_online",
        "last_broadcast",
    ],
)
def test_every_numeric_field_and_the_last_broadcast_read_minus_one_as_none(field: str) -> None:
    row = decode_stats(_answer(**{field: -1}))
    assert getattr(row, field) is None
    assert getattr(decode_stats(_answer(**{field: None})), field) is None


def test_a_last_broadcast_with_a_zone_keeps_it() -> None:
    row = decode_stats(_answer(last_broadcast="2026-03-01T20:00:00+01:00"))
    assert row.last_broadcast == dt.datetime(2026, 3, 1, 19, 0, tzinfo=dt.UTC)


def test_fields_the_answer_leaves_out_are_unknown() -> None:
    row = decode_stats(json.dumps({"username": "owner", "num_followers": 3}).encode())
    assert (row.username, row.num_followers, row.num_viewers, row.last_broadcast) == (
        "owner",
        3,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_answer(num_followers="12"), "num_followers: expected `int | null`, got `str`"),
        (_answer(votes_up=-5), "votes_up: expected `int` >= -1"),
        (_answer(token_balance=2**40), "token_balance: expected `int` <= 2147483647"),
        (_answer(num_followers=...), "num_followers: missing from the answer"),
        (_answer(username=...), "username: missing from the answer"),
        (_answer(username="  "), "username: expected a non-empty string"),
        (_answer(last_broadcast="yesterday"), "last_broadcast: expected an ISO datetime or -1"),
        (_answer(last_broadcast=5), "last_broadcast: expected an ISO datetime or -1, got 5"),
        (b"[]", "$: expected `object`, got `array`"),
        (b"<html>Unauthorized</html>", "body: not JSON"),
    ],
    ids=[
        "string-count",
        "negative",
        "too-large",
        "no-followers",
        "no-username",
        "blank-username",
        "bad-time",
        "number-time",
        "array",
        "html",
    ],
)
def test_a_body_that_does_not_match_names_the_field(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_stats(body)
    assert str(caught.value).startswith(message), str(caught.value)
