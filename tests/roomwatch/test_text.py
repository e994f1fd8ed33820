"""clean_text drops what PostgreSQL and UTF-8 cannot store, and nothing else."""

from __future__ import annotations

import json

from roomwatch.text import clean_text


def test_nul_and_lone_surrogates_are_dropped() -> None:
    decoded = json.loads('"a\\u0000b\\ud800c\\udfffd"')
    assert clean_text(decoded) == "abcd"
    clean_text(decoded).encode("utf-8")  # storable: no UnicodeEncodeError


def test_other_text_is_kept_as_is() -> None:
    text = "héllo 🙂 <b>x</b>\ttab"
    assert clean_text(text) is text
