"""The merge rules of v_person_current_state, one table row per rule (INTERFACE.md priorities)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.storage.merge_cases import CASES, GROUP_OF, VIEW_GROUP, observe


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
    stamp = GROUP_OF[field]
    prefix = VIEW_GROUP.get(stamp, field)
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
