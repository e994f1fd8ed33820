"""The merge rules as data (INTERFACE.md priorities), and how tests put observations in place.

``CASES`` drives the merge view's tests (tests/storage/test_current_state.py) and the person
summary's (test_person_summary.py); ``observe`` writes one source's latest values of a person.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from storage.latest import COLUMNS, GROUPS

FRESH = dt.timedelta(minutes=1)  # inside the 10-minute "recent" window
STALE = dt.timedelta(hours=2)  # outside it

# Each case: observations {source: (age, {field: value})}, then the field to read and the
# expected (value, source, stale). Stale is None for groups that have no staleness (profile).
CASES: list[tuple[str, dict[str, tuple[dt.timedelta, dict[str, Any]]], str, tuple[Any, ...]]] = [
    (
        "profile: affiliate beats cbhours and cache",
        {
            "affiliate": (STALE, {"display_name": "A"}),
            "cbhours": (FRESH, {"display_name": "C"}),
            "profile_cache": (FRESH, {"display_name": "P"}),
        },
        "display_name",
        ("A", "affiliate"),
    ),
    (
        "profile: cbhours when affiliate has no value",
        {
            "affiliate": (FRESH, {"gender": None}),
            "cbhours": (FRESH, {"gender": "f"}),
            "profile_cache": (FRESH, {"gender": "m"}),
        },
        "gender",
        ("f", "cbhours"),
    ),
    (
        "profile: cache after the named live sources",
        {"profile_cache": (STALE, {"country": "US"}), "followed_cams": (FRESH, {"country": "CO"})},
        "country",
        ("US", "profile_cache"),
    ),
    (
        "profile: other sources slot in last",
        {"html_import": (FRESH, {"location": "Earth"})},
        "location",
        ("Earth", "html_import"),
    ),
    (
        "live: recent affiliate wins",
        {
            "affiliate": (FRESH, {"online": True, "viewers": 10}),
            "cbhours": (FRESH, {"online": False, "viewers": 0}),
        },
        "viewers",
        (10, "affiliate", False),
    ),
    (
        "live: stale affiliate falls back to recent cbhours",
        {
            "affiliate": (STALE, {"online": True, "viewers": 10}),
            "cbhours": (FRESH, {"online": False, "viewers": 0}),
        },
        "online",
        (False, "cbhours", False),
    ),
    (
        "live: both stale gives the newest known, marked stale",
        {
            "affiliate": (STALE + dt.timedelta(hours=1), {"online": True, "viewers": 10}),
            "cbhours": (STALE, {"online": True, "viewers": 7}),
        },
        "viewers",
        (7, "cbhours", True),
    ),
    (
        "live: a recent logged-in list comes after stale named sources",
        {
            "affiliate": (STALE, {"online": True, "current_show": "public"}),
            "followed_cams": (FRESH, {"online": True, "current_show": "private"}),
        },
        "current_show",
        ("private", "followed_cams", False),
    ),
    (
        "followers: recent cbhours beats recent affiliate",
        {"affiliate": (FRESH, {"followers": 100}), "cbhours": (FRESH, {"followers": 120})},
        "followers",
        (120, "cbhours", False),
    ),
    (
        "followers: stale cbhours falls back to recent affiliate",
        {"affiliate": (FRESH, {"followers": 100}), "cbhours": (STALE, {"followers": 120})},
        "followers",
        (100, "affiliate", False),
    ),
    (
        "followers: nothing recent gives last known, stale",
        {
            "affiliate": (STALE, {"followers": 100}),
            "followed_cams": (STALE - dt.timedelta(minutes=30), {"followers": 90}),
        },
        "followers",
        (90, "followed_cams", True),
    ),
    (
        "tags: recent affiliate beats cbhours",
        {"affiliate": (FRESH, {"tags": ["a"]}), "cbhours": (FRESH, {"tags": ["c"]})},
        "tags",
        (["a"], "affiliate", False),
    ),
    (
        "tags: stale affiliate falls back to recent cbhours",
        {"affiliate": (STALE, {"tags": ["a"]}), "cbhours": (FRESH, {"tags": ["c"]})},
        "tags",
        (["c"], "cbhours", False),
    ),
    (
        "rank: cbhours only, however old",
        {"cbhours": (STALE, {"rank": 5, "grank": 2}), "affiliate": (FRESH, {"online": True})},
        "rank",
        (5, "cbhours"),
    ),
]

GROUP_OF = {field: stamp for stamp, fields in GROUPS.items() for field in fields}
VIEW_GROUP = {
    "live_at": "live",
    "followers_at": "followers",
    "tags_at": "tags",
    "rank_at": "rank",
    "image_at": "image",
}


def observe(
    conn: psycopg.Connection[Any],
    person_id: int,
    source: str,
    age: dt.timedelta,
    fields: dict[str, Any],
    now: dt.datetime,
) -> None:
    values = dict.fromkeys(COLUMNS)
    for field, value in fields.items():
        values[field] = value
        values[GROUP_OF[field]] = now - age
    columns = ", ".join(["person_id", "source", *values])
    marks = ", ".join(["%s"] * (len(values) + 2))
    conn.execute(
        f"INSERT INTO person_source_latest ({columns}) VALUES ({marks})",
        [person_id, source, *values.values()],
    )
