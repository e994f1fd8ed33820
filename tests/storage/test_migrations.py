"""Migrations: from empty, re-run, a failing file, an edited file, a database from before the
baseline."""

from __future__ import annotations

import logging

import psycopg
import pytest

from roomwatch.errors import MigrationError
from storage.migrator import (
    FOLDED,
    Migration,
    apply_migrations,
    bundled_migrations,
    pending_migrations,
    unknown_migrations,
)


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


def _record_folded(conn: psycopg.Connection[tuple[object, ...]], versions: list[int]) -> None:
    """Makes a baseline-built database look like one that applied the old 0001-0009."""
    conn.execute("DELETE FROM schema_migrations WHERE version = 1")
    for version in versions:
        filename, checksum = FOLDED[version]
        conn.execute(
            "INSERT INTO schema_migrations (version, filename, checksum) VALUES (%s, %s, %s)",
            [version, filename, checksum],
        )
    conn.commit()


def test_a_database_from_before_the_fold_is_adopted(
    empty_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
        _record_folded(conn, list(FOLDED))
        assert pending_migrations(conn) == []
        with caplog.at_level(logging.INFO, logger="storage.migrator"):
            assert apply_migrations(conn) == []  # adopted, nothing re-applied
        assert "adopted 0001_baseline.sql" in caplog.text
        rows = conn.execute("SELECT version, filename FROM schema_migrations ORDER BY version")
        assert rows.fetchall() == [(m.version, m.filename) for m in bundled_migrations()]
        assert apply_migrations(conn) == []


def test_a_database_halfway_through_the_folded_files_is_refused(empty_db: str) -> None:
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn)
        _record_folded(conn, [1, 2, 3])
        with pytest.raises(MigrationError, match=r"only part.*0005_schedules\.sql"):
            apply_migrations(conn)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert 1 in versions and 2 in versions  # nothing changed


def test_unknown_migrations_names_what_this_code_cannot_carry_on_from() -> None:
    bundled = {m.version: (m.filename, m.checksum) for m in bundled_migrations()}
    assert unknown_migrations(bundled) == []
    # An older database: fewer files, or the files the baseline folded (adopted, so known).
    assert unknown_migrations({v: bundled[v] for v in list(bundled)[:2]}) == []
    assert unknown_migrations({**FOLDED, 10: bundled[10]}) == []
    newer = {**bundled, 9999: ("9999_later.sql", "x")}
    assert unknown_migrations(newer) == ["9999_later.sql is newer than this roomwatch"]
    other = {**bundled, 10: ("0010_elsewhere.sql", "x")}
    assert unknown_migrations(other) == [
        "0010_elsewhere.sql differs from this roomwatch's 0010_alert_claims_expire.sql"
    ]
