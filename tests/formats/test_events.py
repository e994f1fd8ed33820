"""The Events API decoder: every method, the clean-up, text kept or not, and what it refuses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from formats.events import METHODS, decode_events, event_time
from roomwatch.errors import DecodeError

EXAMPLE = Path(__file__).parents[1] / "fixtures/doc_examples/events_DOCEXAMPLE_every_method.json"


def _body(*events: dict[str, Any], next_url: str = "https://h/events/owner/T/?i=1") -> bytes:
    return json.dumps({"events": list(events), "nextUrl": next_url}).encode()


def _by_method(store_message_text: bool = True) -> dict[str, Any]:
    answer = decode_events(EXAMPLE.read_bytes(), store_message_text=store_message_text)
    return {(e.method, e.event_id.endswith("-1")): e for e in answer.events}


def test_the_sample_holds_every_method_once_and_decodes() -> None:
    answer = decode_events(EXAMPLE.read_bytes(), store_message_text=True)
    assert {e.method for e in answer.events} == set(METHODS)
    assert answer.next_url.endswith(f"?i={answer.events[-1].event_id}&timeout=10")
    assert all(e.broadcaster == "owner" for e in answer.events)  # from object or the top level
    first = answer.events[0]
    assert first.occurred_at == dt.datetime(2024, 12, 2, 11, 46, 40, tzinfo=dt.UTC)
    assert json.loads(first.raw) == json.loads(EXAMPLE.read_text())["events"][0]


def test_users_are_read_and_cleaned() -> None:
    events = _by_method()
    enter = events["userEnter", False]
    assert (enter.username, enter.has_tokens, enter.in_fanclub, enter.is_mod) == (
        "visitor_one",
        False,
        False,
        False,
    )
    assert (enter.gender, enter.subgender, enter.recent_tips) == ("m", None, "none")
    join = events["fanclubJoin", False]
    assert (join.username, join.gender, join.subgender, join.recent_tips) == (
        "fan_two",
        "t",
        "tf",
        "lots",
    )
    assert events["chatMessage", False].username == "fan_one"  # "Fan_One" on the wire


def test_tips_media_subjects_and_private_messages() -> None:
    events = _by_method()
    tip = events["tip", False]
    assert (tip.username, tip.tokens, tip.is_anon, tip.message) == (
        "fan_two",
        25,
        False,
        "for the song",
    )
    anonymous = events["tip", True]
    assert (anonymous.tokens, anonymous.is_anon, anonymous.message) == (1, True, None)
    media = events["mediaPurchase", False]
    assert (media.username, media.tokens, media.media_id, media.media_type, media.media_name) == (
        "buyer_one",
        50,
        987654,
        "photos",
        "Beach set",
    )
    assert events["roomSubjectChange", False].subject == "Goal: 500 tokens #music"
    assert events["roomSubjectChange", False].username is None
    private = events["privateMessage", False]
    assert (private.username, private.from_user, private.to_user, private.message) == (
        "fan_two",
        "fan_two",
        "owner",
        "a private word",
    )
    assert events["chatMessage", False].message == "hi there \u2764"


def test_message_text_off_leaves_no_text_in_the_record_or_raw() -> None:
    events = _by_method(store_message_text=False)
    for key in [("chatMessage", False), ("privateMessage", False), ("tip", False)]:
        event = events[key]
        assert event.message is None
        raw = json.loads(event.raw)
        assert "message" not in raw["object"].get("message", {})
        assert "message" not in raw["object"].get("tip", {})
    # What the events are about stays.
    assert events["tip", False].tokens == 25
    assert json.loads(events["privateMessage", False].raw)["object"]["message"]["toUser"] == "owner"
    assert b"for the song" not in events["tip", False].raw


def test_message_text_off_also_strips_an_unknown_method_s_text() -> None:
    odd = {"method": "roomNotice", "id": "1-0", "object": {"message": "secret words", "x": 1}}
    (event,) = decode_events(_body(odd), store_message_text=False).events
    assert (event.method, event.message, json.loads(event.raw)["object"]) == (
        "roomNotice",
        None,
        {"x": 1},
    )


def test_unknown_methods_and_fields_are_kept_raw() -> None:
    odd = {
        "method": "roomVoteCast",
        "id": "1733140000000-4",
        "object": {"user": "not an object", "vote": "up"},
        "extra": [1, 2],
    }
    known = {
        "method": "follow",
        "id": "1733140000001-0",
        "object": {"user": {"username": "A", "newField": 1}, "other": {}},
    }
    first, second = decode_events(_body(odd, known), store_message_text=True).events
    assert (first.method, first.username, first.occurred_at.year) == ("roomVoteCast", None, 2024)
    assert json.loads(first.raw) == odd
    assert (second.username, json.loads(second.raw)["object"]["user"]["newField"]) == ("a", 1)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"method": "follow", "id": "1-0", "object": {}}, "events[0].object.user: missing"),
        ({"method": "tip", "id": "abc", "object": {}}, "events[0].id"),
        (
            {"method": "tip", "id": "1-0", "object": {"user": {"username": "a"}, "tip": {}}},
            "events[0].object.tip",
        ),
        (
            {"method": "follow", "id": "1-0", "object": {"user": {"username": 5}}},
            "events[0].object.user.username",
        ),
        ({"id": "1-0", "object": {}}, "events[0]"),
    ],
)
def test_a_body_that_does_not_match_names_the_field(event: dict[str, Any], named: str) -> None:
    with pytest.raises(DecodeError, match=named.replace("[", r"\[").replace("]", r"\]")):
        decode_events(_body(event), store_message_text=True)


def test_an_answer_without_next_url_or_not_json_is_refused() -> None:
    with pytest.raises(DecodeError, match="nextUrl"):
        decode_events(msgspec.json.encode({"events": []}), store_message_text=True)
    with pytest.raises(DecodeError, match="not JSON"):
        decode_events(b"<html>", store_message_text=True)


def test_an_empty_answer_is_only_the_next_url() -> None:
    answer = decode_events(_body(next_url="https://h/e/o/T/?i=5-0"), store_message_text=False)
    assert answer == ([], "https://h/e/o/T/?i=5-0")


def test_event_time_reads_the_milliseconds() -> None:
    assert event_time("1733140001234-7") == dt.datetime(2024, 12, 2, 11, 46, 41, 234000, dt.UTC)
    with pytest.raises(ValueError, match="<milliseconds>-<sequence>"):
        event_time("1733140001234")
