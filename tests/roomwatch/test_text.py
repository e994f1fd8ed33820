"""clean_text drops what PostgreSQL and UTF-8 cannot store, and nothing else."""

from __future__ import annotations

import json

from roomwatch.text import clean_json, clean_text


def test_nul_and_lone_surrogates_are_dropped() -> None:
    decoded = json.loads('"a\\u0000b\\ud800c\\udfffd"')
    assert clean_text(decoded) == "abcd"
    clean_text(decoded).encode("utf-8")  # storable: no UnicodeEncodeError


def test_other_text_is_kept_as_is() -> None:
    text = "héllo 🙂 <b>x</b>\ttab"
    assert clean_text(text) is text


def test_clean_json_drops_unstorable_escapes_from_values_and_keys() -> None:
    body = b'{"a\\u0000":"x\\u0000y\\ud800 \\udc00z","n":[1,2.5,null,true],"ok":"\\ud83d\\ude00"}'
    cleaned = clean_json(body)
    assert json.loads(cleaned) == {"a": "xy z", "n": [1, 2.5, None, True], "ok": "\U0001f600"}
    assert b"\\u0000" not in cleaned and b"\\ud8" not in cleaned


def test_clean_json_leaves_ordinary_and_broken_bodies_alone() -> None:
    body = b'{"a":"\\u00e9 \\ud83d\\ude00","b":"x\\\\y"}'
    assert clean_json(body) is body
    broken = b'{"a":"\\u0000'
    assert clean_json(broken) == broken  # the decoder refuses it with its own message
