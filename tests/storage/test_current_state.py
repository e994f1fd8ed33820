"""The merge rules of v_person_current_state, one table row per rule (INTERFACE.md priorities)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

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

_GROUP_OF = {field: stamp for stamp, fields in GROUPS.items() for field in fields}
_VIEW_GROUP = {
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
        values[_GROUP_OF[field]] = now - age
    columns = ", ".join(["person_id", "source", *values])
    marks = ", ".join(["%s"] * (len(values) + 2))
    conn.execute(
        f"INSERT INTO person_source_latest ({columns}) VALUES ({marks})",
        [person_id, source, *values.values()],
    )


@pytest.mark.parametrize(
    ("observations", "field", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_priority_rule(
    db: psycopg.Connection[Any], observations: dict[str, Any], field: str, expected: tuple[Any, ...]
) -> None:
    now = dt.datetime.now(dt.UTC)
    row = db.execute("INSERT INTO persons (username) VALUES ('someone') RETURNING person_id")
    person_id = row.fetchone()[0]  # type: ignore[index]
    for source, (age, fields) in observations.items():
        observe(db, person_id, source, age, fields, now)
    state = (
        db.cursor(row_factory=dict_row)
        .execute("SELECT * FROM v_person_current_state WHERE username = 'someone'")
        .fetchone()
    )
    assert state is not None
    stamp = _GROUP_OF[field]
    prefix = _VIEW_GROUP.get(stamp, field)
    assert state[field] == expected[0]
    assert state[f"{prefix}_source"] == expected[1]
    winner_age = observations[expected[1]][0]
    assert abs(state[f"{prefix}_observed_at"] - (now - winner_age)) < dt.timedelta(seconds=1)
    if len(expected) == 3:
        assert state[f"{prefix}_stale"] is expected[2]


def test_recent_window_is_a_setting(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    person_id = db.execute(
        "INSERT INTO persons (username) VALUES ('x') RETURNING person_id"
    ).fetchone()[0]  # type: ignore[index]
    observe(db, person_id, "affiliate", dt.timedelta(minutes=20), {"viewers": 3}, now)
    query = "SELECT live_stale FROM v_person_current_state WHERE person_id = %s"
    assert db.execute(query, [person_id]).fetchone() == (True,)
    db.execute("UPDATE roomwatch_settings SET value = '30 minutes' WHERE key = 'recent_interval'")
    assert db.execute(query, [person_id]).fetchone() == (False,)


def test_single_lookup_does_not_scan_history(db: psycopg.Connection[Any]) -> None:
    plan = "\n".join(
        str(r[0])
        for r in db.execute("EXPLAIN SELECT * FROM v_person_current_state WHERE username = 'x'")
    )
    assert "affiliate_api_snapshots" not in plan and "cbhours_live_stats" not in plan
    assert "Seq Scan on person_source_latest" not in plan
