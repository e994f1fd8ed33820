"""Session files from before migration 0018 are carried into the database at start-up.

The files and rows are made here as the code before 0018 made them (an encrypted 0600 file in
``data_dir/sessions``, a row naming it), on a database migrated up to 0017; then the agent's
``migrate`` runs, as ``roomwatch run``, ``roomwatch migrate`` and ``roomwatch crawl`` do.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from playwright.async_api import StorageState

from agent.runtime import migrate
from roomwatch.config import Config, load_config
from roomwatch.errors import SessionError
from sessions.crypto import load_cipher
from sessions.store import carry_session_files, load_session, load_usable_session, sessions_dir
from storage.login_sessions import list_login_sessions
from storage.migrator import apply_migrations, bundled_migrations
from tests.support import cookie_state


def _old_save(conn: Any, config: Config, state: StorageState, account: str) -> tuple[int, Path]:
    """What ``save_session`` did before migration 0018: the file, then the row naming it."""
    directory = sessions_dir(config)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / (secrets.token_urlsafe(18) + ".session")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(load_cipher(config).encrypt(msgspec.json.encode(state)))
    (session_id,) = conn.execute(
        "INSERT INTO login_sessions (account, method, status, last_verified_at, file_name) "
        "VALUES (%s, 'import', 'valid', now(), %s) RETURNING session_id",
        [account, path.name],
    ).fetchone()
    return session_id, path


@pytest.fixture
def before_0018(empty_db: str) -> str:
    """A database migrated as the version before this one left it (up to 0017)."""
    with psycopg.connect(empty_db) as conn:
        apply_migrations(conn, [m for m in bundled_migrations() if m.version < 18])
    return empty_db


def _config(tmp_path: Path) -> Config:
    return load_config({"ROOMWATCH_DATA_DIR": str(tmp_path / "data")})


def test_files_are_carried_in_and_removed_once_their_rows_hold_them(
    before_0018: str, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        alice, alice_file = _old_save(conn, config, cookie_state("alice-cookie"), "alice")
        bob, bob_file = _old_save(conn, config, cookie_state("bob-cookie"), "bob")
        sealed = alice_file.read_bytes()

    assert "0018_shared_state.sql" in migrate(before_0018, config)

    assert not alice_file.exists() and not bob_file.exists()
    assert not sessions_dir(config).exists()  # emptied, then removed
    with psycopg.connect(before_0018, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT session_id, state, file_name FROM login_sessions ORDER BY session_id"
        ).fetchall()
        assert [(i, name) for i, _, name in rows] == [(alice, None), (bob, None)]
        assert bytes(rows[0][1]) == sealed  # moved as it was: same key, same format
        assert load_session(conn, config, alice)[1] == cookie_state("alice-cookie")
        assert load_session(conn, config, bob)[1] == cookie_state("bob-cookie")
        before = list_login_sessions(conn)
    assert migrate(before_0018, config) == []  # again: nothing to carry, nothing changes
    with psycopg.connect(before_0018, autocommit=True) as conn:
        assert list_login_sessions(conn) == before
        assert load_usable_session(conn, config) is not None


def test_a_carry_cut_short_after_the_commit_finishes_the_next_time(
    before_0018: str, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        session_id, path = _old_save(conn, config, cookie_state("c"), "alice")
    migrate(before_0018, config)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        # As if the process died after committing the state, before removing the file.
        path.parent.mkdir(mode=0o700)
        path.write_bytes(b"the file left behind")
        conn.execute(
            "UPDATE login_sessions SET file_name = %s WHERE session_id = %s",
            [path.name, session_id],
        )
        assert carry_session_files(conn, config) == 0  # nothing new to carry...
        assert not path.exists()  # ...but the file goes, and the row forgets it
        assert conn.execute("SELECT file_name FROM login_sessions").fetchone() == (None,)
        assert load_session(conn, config, session_id)[1] == cookie_state("c")  # state kept


def test_a_missing_file_leaves_its_row_without_state_and_says_so(
    before_0018: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        session_id, path = _old_save(conn, config, cookie_state("c"), "alice")
    path.unlink()
    with caplog.at_level(logging.WARNING, logger="sessions.store"):
        migrate(before_0018, config)
    assert f"session #{session_id}: its file could not be carried" in caplog.text
    with psycopg.connect(before_0018, autocommit=True) as conn:
        with pytest.raises(SessionError, match=f"session #{session_id} has no stored state"):
            load_session(conn, config, session_id)
        assert [row.session_id for row in list_login_sessions(conn)] == [session_id]


@pytest.mark.parametrize("name", ["../../victim.txt", "/etc/hostname", ".."])
def test_a_row_naming_a_file_outside_the_folder_is_not_read_nor_removed(
    before_0018: str, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    sessions_dir(config).mkdir(parents=True)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO login_sessions (account, method, file_name) VALUES ('x', 'import', %s)",
            [name],
        )
    with caplog.at_level(logging.WARNING, logger="sessions.store"):
        migrate(before_0018, config)
    assert "its file name is not a plain name" in caplog.text
    assert name not in caplog.text or name == ".."
    assert victim.read_text() == "keep me"
    with psycopg.connect(before_0018, autocommit=True) as conn:
        assert conn.execute("SELECT state FROM login_sessions").fetchone() == (None,)


def test_a_symlink_out_of_the_folder_is_not_followed(before_0018: str, tmp_path: Path) -> None:
    config = _config(tmp_path)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        _, path = _old_save(conn, config, cookie_state("c"), "alice")
    outside = tmp_path / "outside.session"
    path.rename(outside)
    path.symlink_to(outside)
    migrate(before_0018, config)
    assert outside.exists() and path.is_symlink()
    with psycopg.connect(before_0018, autocommit=True) as conn:
        assert conn.execute("SELECT state FROM login_sessions").fetchone() == (None,)


def test_two_carriers_at_once_carry_each_file_once_and_warn_of_nothing(
    before_0018: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An agent and a CLI command starting together.
    config = _config(tmp_path)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        saved = [_old_save(conn, config, cookie_state(f"c{i}"), f"a{i}") for i in range(20)]
    only_0018 = [m for m in bundled_migrations() if m.version == 18]
    with psycopg.connect(before_0018) as conn:
        apply_migrations(conn, only_0018)
    counts: list[int] = []

    def carry() -> None:
        with psycopg.connect(before_0018, autocommit=True) as conn:
            counts.append(carry_session_files(conn, config))

    with caplog.at_level(logging.WARNING, logger="sessions.store"):
        carriers = [threading.Thread(target=carry) for _ in range(2)]
        for thread in carriers:
            thread.start()
        for thread in carriers:
            thread.join(60)
    assert sum(counts) == 20
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any(path.exists() for _, path in saved)
    with psycopg.connect(before_0018, autocommit=True) as conn:
        for i, (session_id, _) in enumerate(saved):
            assert load_session(conn, config, session_id)[1] == cookie_state(f"c{i}")
