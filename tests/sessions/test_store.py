"""Stored sessions on the real database: encrypted in their rows, metadata read alone, keys."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from playwright.async_api import StorageState

from roomwatch.config import Config, load_config
from roomwatch.errors import ConfigError, SessionError
from roomwatch.logs import redact
from sessions.crypto import KEY_FILE_NAME, load_cipher
from sessions.store import (
    delete_session,
    load_session,
    load_usable_session,
    record_status,
    save_session,
    sessions_dir,
)
from storage.login_sessions import (
    get_login_session,
    list_login_sessions,
    login_session_state,
    usable_login_session,
)

COOKIE_VALUE = "zq4m1xv8plain0text0cookie0value7"
STATE: StorageState = {
    "cookies": [
        {
            "name": "sessionid",
            "value": COOKIE_VALUE,
            "domain": "chaturbate.com",
            "path": "/",
            "expires": -1,
            "httpOnly": True,
            "secure": True,
            "sameSite": "Lax",
        }
    ],
    "origins": [],
}


def _config(data_dir: Path, secret_key: str = "") -> Config:
    env = {"ROOMWATCH_DATA_DIR": str(data_dir)}
    if secret_key:
        env["ROOMWATCH_SECRET_KEY"] = secret_key
    return load_config(env)


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_session_is_encrypted_in_its_row_and_loads_back(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    row = save_session(conn, config, STATE, account="alice", method="form", status="valid")
    assert (row.account, row.method, row.status) == ("alice", "form", "valid")
    assert row.last_verified_at is not None
    (stored, file_name) = conn.execute(
        "SELECT state, file_name FROM login_sessions WHERE session_id = %s", [row.session_id]
    ).fetchone()
    assert file_name is None
    assert COOKIE_VALUE.encode() not in stored
    assert bytes(stored).startswith(b"roomwatch-session 1 key\n")
    assert not sessions_dir(config).exists()  # no file, anywhere
    assert _mode(config.data_path / KEY_FILE_NAME) == 0o600

    loaded_row, state = load_session(conn, config, row.session_id)
    assert loaded_row == row
    assert state == STATE


def test_rows_read_as_metadata_hold_no_secret(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    save_session(conn, config, STATE, account="alice", method="import")
    dump = conn.execute("SELECT row_to_json(s)::text FROM login_sessions s").fetchall()
    assert dump
    assert all(COOKIE_VALUE not in text for (text,) in dump)


def test_metadata_reads_never_fetch_the_state(conn: Any, tmp_path: Path) -> None:
    # A role that may read every column but the state: whatever works under it cannot have
    # fetched one (PostgreSQL refuses a query naming a column the role may not read).
    config = _config(tmp_path / "data")
    row = save_session(conn, config, STATE, account="alice", method="import")
    role = f"no_state_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE ROLE {role}")
    conn.execute(
        "GRANT SELECT (session_id, account, method, captured_at, last_verified_at, status, "
        f"file_name) ON login_sessions TO {role}"
    )
    try:
        conn.execute(f"SET ROLE {role}")
        assert list_login_sessions(conn) == [row]
        assert get_login_session(conn, row.session_id) == row
        assert usable_login_session(conn) == row
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            login_session_state(conn, row.session_id)
    finally:
        conn.execute("RESET ROLE")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_loading_registers_cookie_values_as_secrets(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    value = "another0cookie0value0only0in0file"
    state: StorageState = {"cookies": [{**STATE["cookies"][0], "value": value}], "origins": []}
    row = save_session(conn, config, state, account="alice", method="import")
    load_session(conn, config, row.session_id)
    assert value not in redact(f"cookie is {value}")


def test_the_key_file_is_generated_once_and_reused(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    first = load_cipher(config).encrypt(b"hello")
    key = (config.data_path / KEY_FILE_NAME).read_bytes()
    assert load_cipher(config).decrypt(first, name="x") == b"hello"
    assert (config.data_path / KEY_FILE_NAME).read_bytes() == key
    assert [p.name for p in config.data_path.iterdir()] == [KEY_FILE_NAME]  # no temp file left


def test_a_wrong_key_gives_a_clear_error_without_secrets(conn: Any, tmp_path: Path) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    data_dir = tmp_path / "data"
    row = save_session(conn, _config(data_dir, key_a), STATE, account="alice", method="form")
    with pytest.raises(SessionError) as caught:
        load_session(conn, _config(data_dir, key_b), row.session_id)
    message = str(caught.value)
    assert message.startswith(f"cannot decrypt session #{row.session_id}: wrong secret key")
    assert "ROOMWATCH_SECRET_KEY" in message
    assert key_a not in message and key_b not in message and COOKIE_VALUE not in message


def test_a_session_saved_on_one_machine_loads_on_another_with_the_same_key(
    conn: Any, tmp_path: Path
) -> None:
    # A Scrapyd node: its own data dir, the database and the key from its environment.
    key = Fernet.generate_key().decode()
    row = save_session(conn, _config(tmp_path / "agent", key), STATE, account="a", method="form")
    node = _config(tmp_path / "node", key)
    assert load_usable_session(conn, node) == (row, STATE)
    assert not (tmp_path / "node").exists()


def test_a_passphrase_derives_a_key_per_session(conn: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    passphrase = "a long enough passphrase for tests"
    config = _config(data_dir, passphrase)
    row = save_session(conn, config, STATE, account="alice", method="form")
    (content,) = conn.execute(
        "SELECT state FROM login_sessions WHERE session_id = %s", [row.session_id]
    ).fetchone()
    assert bytes(content).startswith(b"roomwatch-session 1 scrypt ")
    assert passphrase.encode() not in content
    assert load_session(conn, config, row.session_id)[1] == STATE
    assert not (data_dir / KEY_FILE_NAME).exists()

    with pytest.raises(SessionError, match="wrong secret key"):
        load_session(conn, _config(data_dir, "another long passphrase here"), row.session_id)
    with pytest.raises(SessionError, match="encrypted with a passphrase"):
        load_session(conn, _config(data_dir, Fernet.generate_key().decode()), row.session_id)


def test_a_short_passphrase_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"secret_key \(ROOMWATCH_SECRET_KEY\)"):
        load_cipher(_config(tmp_path, "short"))


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    config.data_path.mkdir(parents=True)
    (config.data_path / KEY_FILE_NAME).write_text("not a key\n")
    with pytest.raises(SessionError, match="is not a valid key"):
        load_cipher(config)


def test_delete_removes_the_session(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    row = save_session(conn, config, STATE, account="alice", method="form")
    assert delete_session(conn, config, row.session_id) == row
    assert list_login_sessions(conn) == []
    with pytest.raises(SessionError, match=f"no session #{row.session_id}"):
        delete_session(conn, config, row.session_id)
    with pytest.raises(SessionError, match=f"no session #{row.session_id}"):
        load_session(conn, config, row.session_id)


def test_a_failed_insert_stores_nothing(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    with pytest.raises(psycopg.errors.CheckViolation):
        save_session(conn, config, STATE, account="alice", method="bogus")  # type: ignore[arg-type]
    assert list_login_sessions(conn) == []
    assert not sessions_dir(config).exists()


def test_status_and_the_usable_session(conn: Any, tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    assert load_usable_session(conn, config) is None
    older = save_session(conn, config, STATE, account="alice", method="form")
    newer = save_session(conn, config, STATE, account="bob", method="import")
    assert load_usable_session(conn, config)[0].session_id == newer.session_id  # type: ignore[index]
    verified = record_status(conn, older.session_id, "valid")
    assert verified.status == "valid" and verified.last_verified_at is not None
    assert load_usable_session(conn, config)[0].session_id == older.session_id  # type: ignore[index]
    record_status(conn, older.session_id, "expired")
    record_status(conn, newer.session_id, "expired")
    assert load_usable_session(conn, config) is None
    with pytest.raises(SessionError):
        record_status(conn, 999_999, "valid")
