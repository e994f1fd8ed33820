"""Migration 0020 (accounts) on a database filled by the schema before it: every login session,
follow state, follow event, complete check, job and schedule lands on the one existing account,
and an install whose account cannot be known is stopped with a message naming the way out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from roomwatch.errors import MigrationError
from storage.migrator import apply_migrations, bundled_migrations

Connection = psycopg.Connection[Any]
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _migrate(conninfo: str, *, upto: int | None = None, account: str | None = None) -> list[str]:
    """Applies the migrations (up to ``upto``), as an operator who set ``roomwatch.account``."""
    todo = [m for m in bundled_migrations() if upto is None or m.version <= upto]
    options = f"-c roomwatch.account={account}" if account else ""
    with psycopg.connect(conninfo, options=options) as conn:
        return apply_migrations(conn, todo)


def _fill(conn: Connection, *, session: str | None, stream: str | None) -> None:
    """Rows as the code of migration 0017 writes them (its SQL, its columns)."""
    if session is not None:
        conn.execute(
            "INSERT INTO login_sessions (account, method, status, file_name) "
            "VALUES (%s, 'form', 'valid', 'a.session'), ('unknown', 'import', 'unknown', 'b')",
            [session],
        )
    if stream is not None:
        conn.execute(
            "INSERT INTO room_event_streams (account, last_event_id) VALUES (%s, '1-0')", [stream]
        )
        conn.execute(
            "INSERT INTO room_stats (account, observed_at, num_followers, raw) "
            "VALUES (%s, %s, 3, '{}')",
            [stream, T0],
        )
    followed_job, affiliate_job = (
        conn.execute(
            "INSERT INTO crawl_jobs (spider, trigger, status) VALUES (%s, 'cli', 'succeeded') "
            "RETURNING job_id",
            [spider],
        ).fetchone()[0]  # type: ignore[index]
        for spider in ("followed_cams", "affiliate")
    )
    conn.execute(
        "INSERT INTO persons (username, following, following_checked_at, follower, "
        "follower_checked_at) VALUES "
        "('ann', true, %(t)s, NULL, NULL), ('bea', false, %(t)s, true, %(t)s), "
        "('cid', NULL, NULL, false, %(t)s), ('dot', NULL, NULL, NULL, NULL)",
        {"t": T0},
    )
    conn.execute(
        "INSERT INTO follow_events (person_id, kind, occurred_at, source, job_id) "
        "SELECT person_id, kind, %s, 'followed_cams', %s FROM persons, "
        "unnest(ARRAY['followed', 'unfollowed']) kind WHERE username IN ('ann', 'bea')",
        [T0, followed_job],
    )
    conn.execute(
        "INSERT INTO source_polls (source, completed_at, job_id, rows_seen) VALUES "
        "('followed_cams', %(t)s, %(j)s, 1), ('followers', %(t)s, NULL, 1), "
        "('html_import:following', %(t)s, NULL, 1), ('affiliate', %(t)s, %(a)s, 9)",
        {"t": T0, "j": followed_job, "a": affiliate_job},
    )
    conn.execute(
        "INSERT INTO schedules (name, spider, interval_seconds) VALUES "
        "('followed_cams', 'followed_cams', 3600), ('affiliate', 'affiliate', 60)"
    )


def _owners(conn: Connection, table: str, where: str = "true") -> list[str | None]:
    return [r[0] for r in conn.execute(f"SELECT account FROM {table} WHERE {where}")]


def _accounts(conn: Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT account FROM accounts ORDER BY account")]


@pytest.mark.parametrize(
    ("session", "stream"), [("alice", None), (None, "alice"), ("alice", "alice")]
)
def test_existing_data_lands_on_the_one_account(
    empty_db: str, session: str | None, stream: str | None
) -> None:
    _migrate(empty_db, upto=17)
    with psycopg.connect(empty_db) as conn:
        _fill(conn, session=session, stream=stream)
    assert "0020_accounts.sql" in _migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert _owners(conn, "accounts") == ["alice"]
        assert set(_owners(conn, "follow_events")) == {"alice"}
        assert len(_owners(conn, "follow_events")) == 4
        assert set(_owners(conn, "source_polls", "source <> 'affiliate'")) == {"alice"}
        assert _owners(conn, "source_polls", "source = 'affiliate'") == [None]
        assert _owners(conn, "crawl_jobs", "spider = 'followed_cams'") == ["alice"]
        assert _owners(conn, "crawl_jobs", "spider = 'affiliate'") == [None]
        assert _owners(conn, "schedules", "spider = 'followed_cams'") == ["alice"]
        assert _owners(conn, "schedules", "spider = 'affiliate'") == [None]
        follow_state = conn.execute(
            "SELECT a.account, p.username, a.following, a.following_checked_at, a.follower, "
            "a.follower_checked_at FROM account_persons a JOIN persons p USING (person_id) "
            "ORDER BY username"
        ).fetchall()
        assert follow_state == [
            ("alice", "ann", True, T0, None, None),
            ("alice", "bea", False, T0, True, T0),
            ("alice", "cid", None, None, False, T0),
        ]
        # Nothing of the person rows or the events was lost on the way.
        rows = conn.execute(
            "SELECT username, following, follower FROM persons ORDER BY username"
        ).fetchall()
        assert rows == [
            ("ann", True, None),
            ("bea", False, True),
            ("cid", None, False),
            ("dot", None, None),
        ]


def test_an_unknown_account_stops_the_migration_until_named(empty_db: str) -> None:
    _migrate(empty_db, upto=17)
    with psycopg.connect(empty_db) as conn:
        _fill(conn, session=None, stream=None)
    with pytest.raises(MigrationError, match=r"0020_accounts\.sql.*roomwatch\.account"):
        _migrate(empty_db)
    with psycopg.connect(empty_db) as conn:  # rolled back whole: still the old schema
        assert conn.execute("SELECT to_regclass('accounts')").fetchone() == (None,)
    _migrate(empty_db, account="Alice")
    with psycopg.connect(empty_db) as conn:
        assert _owners(conn, "accounts") == ["alice"]
        assert set(_owners(conn, "follow_events")) == {"alice"}
        assert set(_owners(conn, "account_persons")) == {"alice"}


def test_two_accounts_are_named_and_the_operator_chooses(empty_db: str) -> None:
    _migrate(empty_db, upto=17)
    with psycopg.connect(empty_db) as conn:
        _fill(conn, session="alice", stream="bob")
    with pytest.raises(MigrationError, match=r"alice, bob"):
        _migrate(empty_db)
    _migrate(empty_db, account="bob")
    with psycopg.connect(empty_db) as conn:
        assert _accounts(conn) == ["alice", "bob"]
        assert set(_owners(conn, "follow_events")) == {"bob"}


def test_an_install_with_nothing_to_carry_needs_no_account(empty_db: str) -> None:
    _migrate(empty_db, upto=17)
    _migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert _owners(conn, "accounts") == []
        # Accounts then come with the first session, stream position or Stats answer.
        conn.execute(
            "INSERT INTO login_sessions (account, method, file_name) "
            "VALUES ('carol', 'form', 'c'), ('unknown', 'form', 'u')"
        )
        conn.execute(
            "INSERT INTO room_event_streams (account, last_event_id) VALUES ('dan', '1-0')"
        )
        assert _accounts(conn) == ["carol", "dan"]
