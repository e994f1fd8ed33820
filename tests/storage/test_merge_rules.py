"""The merge rules are one definition (storage/merge_rules.py), and the migrations say what it says.

The rules' behaviour is tested through the view in test_current_state.py and
test_person_summary.py; here: the committed SQL matches the definition, the tables have the
columns it declares, and changing a priority is one edit plus the migration it writes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest

from storage import merge_rules
from storage.follow_durations import FOLLOW_DURATIONS
from storage.latest import COLUMNS
from storage.merge_rules import Group, Rule
from storage.migrator import Migration, apply_migrations, bundled_migrations
from storage.person_list import PersonSummary
from storage.person_queries import PersonDetail, PersonSources
from tests.storage.merge_cases import observe


def _columns(conn: psycopg.Connection[Any], table: str) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return tuple(str(r[0]) for r in rows)


def test_the_newest_committed_block_is_what_the_rules_generate() -> None:
    found = merge_rules.committed_block(merge_rules.bundled_sql())
    assert found is not None, "no migration holds a generated block"
    name, block = found
    assert block == merge_rules.generated_sql(), (
        f"{name} does not say what storage/merge_rules.py says: "
        "run `python -m storage.merge_rules new-migration NAME` (docs/architecture.md)"
    )


def test_tables_have_the_declared_columns(db: psycopg.Connection[Any]) -> None:
    assert _columns(db, "person_source_latest") == ("person_id", "source", *COLUMNS)
    assert _columns(db, "person_summary") == (
        *merge_rules.SUMMARY_COLUMNS,
        *merge_rules.SUMMARY_SORT_KEYS,
    )
    # The list's rows carry the stored columns, and what is computed when read.
    assert tuple(
        f for f in PersonSummary.__struct_fields__ if f not in ("live_stale", *FOLLOW_DURATIONS)
    ) == (merge_rules.SUMMARY_VIEW_COLUMNS)
    view = _columns(db, "v_person_current_state")
    assert set(merge_rules.PERSON_COLUMNS) | set(COLUMNS) - {
        g.stamp for g in merge_rules.GROUPS
    } <= set(view)


def test_every_source_is_accepted_and_only_those(db: psycopg.Connection[Any]) -> None:
    person_id = db.execute("INSERT INTO persons (username) VALUES ('x') RETURNING person_id")
    pid = person_id.fetchone()[0]  # type: ignore[index]
    for source in merge_rules.SOURCES:
        db.execute(
            "INSERT INTO person_source_latest (person_id, source) VALUES (%s, %s)", [pid, source]
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO person_source_latest (person_id, source) VALUES (%s, 'nobody')", [pid]
        )


def test_provenance_names_the_view_columns() -> None:
    assert merge_rules.provenance("age") == ("age", False)
    assert merge_rules.provenance("viewers") == ("live", True)
    assert merge_rules.provenance("grank") == ("rank", False)
    with pytest.raises(KeyError):
        merge_rules.provenance("nope")


def test_the_detail_shows_every_merged_field_with_its_source() -> None:
    # A field added to a group of the rules is one the API must show, with its provenance:
    # this names the field missing from PersonDetail or PersonSources.
    merged = {field for group in merge_rules.GROUPS for field in group.fields}
    assert set(PersonSources.__struct_fields__) == merged
    assert merged <= set(PersonDetail.__struct_fields__)


def test_new_migration_is_numbered_after_the_last(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("")
    (tmp_path / "0012_b.sql").write_text("")
    path = merge_rules.new_migration(tmp_path, "followers_by_affiliate")
    assert path.name == "0013_followers_by_affiliate.sql"
    text = path.read_text()
    assert merge_rules.generated_sql() in text
    assert merge_rules.committed_block({path.name: text}) == (
        path.name,
        merge_rules.generated_sql(),
    )
    with pytest.raises(ValueError, match="lower-case"):
        merge_rules.new_migration(tmp_path, "Bad Name")


def test_changing_a_priority_is_one_edit_and_a_migration(
    empty_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Follower counts from affiliate first: the edit, the migration it writes, and a database
    whose summaries (and tag rows) follow the new rule once that migration is applied."""
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        row = conn.execute("INSERT INTO persons (username) VALUES ('x') RETURNING person_id")
        person_id = row.fetchone()[0]  # type: ignore[index]
        fresh = dt.timedelta(minutes=1)
        observe(conn, person_id, "affiliate", fresh, {"followers": 1, "tags": ["t"]}, now)
        observe(conn, person_id, "cbhours", fresh, {"followers": 2}, now)
        conn.commit()
        summary = "SELECT followers FROM person_summary WHERE person_id = %s"
        # The tag rows hold the follower count's key (migration 0023): 1 and 2 have their own.
        tag_rows = "SELECT followers_key FROM person_tag_followers WHERE person_id = %s"
        assert conn.execute(summary, [person_id]).fetchone() == (2,)
        assert conn.execute(tag_rows, [person_id]).fetchall() == [(2,)]

        groups = tuple(
            Group(g.stamp, g.fields, Rule.FIRST_RECENT, ("affiliate", "cbhours"))
            if g.stamp == "followers_at"
            else g
            for g in merge_rules.GROUPS
        )
        monkeypatch.setattr(merge_rules, "GROUPS", groups)
        path = merge_rules.new_migration(tmp_path, "followers_from_affiliate")
        added = Migration(9999, path.name, path.read_text())
        assert apply_migrations(conn, [*bundled_migrations(), added]) == [path.name]
        assert conn.execute(summary, [person_id]).fetchone() == (1,)
        assert conn.execute(tag_rows, [person_id]).fetchall() == [(1,)]
        view = "SELECT followers, followers_source FROM v_person_current_state"
        assert conn.execute(view).fetchall() == [(1, "affiliate")]
