"""Migrations: from empty, re-run, a failing file, an edited file."""

from __future__ import annotations

import psycopg
import pytest

from roomwatch.errors import MigrationError
from storage.migrator import Migration, apply_migrations, bundled_migrations, pending_migrations


def _tables(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {str(r[0]) for r in rows}


def test_from_empty_applies_every_file_and_rerun_is_a_noop(empty_db: str) -> None:
    with psycopg.connect(empty_db) as conn:
        assert pending_migrations(conn) == [m.filename for m in bundled_migrations()]
        applied = apply_migrations(conn)
        assert applied == [m.filename for m in bundled_migrations()]
        assert {
            "persons",
            "affiliate_api_snapshots",
            "cbhours_activity",
            "crawl_jobs",
            "login_sessions",
            "schedules",
            "follow_events",
            "images",
            "profiles",
            "person_source_latest",
        } <= _tables(conn)
        assert apply_migrations(conn) == []
        assert pending_migrations(conn) == []
        view = conn.execute("SELECT to_regclass('v_person_current_state')").fetchone()
        assert view is not None and view[0] is not None


def test_failed_migration_is_rolled_back_and_named(empty_db: str) -> None:
    good = Migration(1, "0001_good.sql", "CREATE TABLE a (x int);")
    bad = Migration(
        2, "0002_bad.sql", "CREATE TABLE b (x int); INSERT INTO b VALUES (1); SELECT nope FROM a;"
    )
    with psycopg.connect(empty_db) as conn:
        with pytest.raises(MigrationError, match=r"0002_bad\.sql") as failure:
            apply_migrations(conn, [good, bad])
        assert "nope" in str(failure.value)
        # The good file stays, the bad one left nothing behind and is not recorded.
        assert "a" in _tables(conn) and "b" not in _tables(conn)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [1]


def test_editing_an_applied_migration_is_refused(empty_db: str) -> None:
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn, [Migration(1, "0001_a.sql", "CREATE TABLE a (x int);")])
        edited = Migration(1, "0001_a.sql", "CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(conn, [edited])
