"""Stored login sessions: the encrypted storage-state file plus its metadata row, kept together.

A session is a Playwright storage state (cookies and per-origin local storage). It is written,
encrypted (``sessions.crypto``), to ``data_dir/sessions/<random>.session`` (directory 0700,
file 0600, created with ``O_EXCL``); the ``login_sessions`` row holds only metadata and the file
name. Saving writes the file first and removes it again if the row cannot be added; deleting
removes the file inside the row's transaction, so a failure keeps both. Every cookie value that
passes through here is registered with :func:`roomwatch.logs.register_secret`, so a log line
can never show it.

Each function that takes a database connection has an ``_async`` twin (the control API's),
which does the same on an ``AsyncConnection`` and its file work in a worker thread.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import anyio.to_thread
import msgspec
from playwright.async_api import StorageState

from roomwatch.config import Config
from roomwatch.errors import SessionError
from roomwatch.logs import register_secret
from sessions.crypto import SessionCipher, load_cipher
from storage.login_sessions import (
    AsyncConnection,
    Connection,
    LoginSession,
    Method,
    Status,
    delete_login_session,
    delete_login_session_async,
    get_login_session,
    get_login_session_async,
    insert_login_session,
    insert_login_session_async,
    set_login_session_status,
    set_login_session_status_async,
    usable_login_session,
)

SESSIONS_DIR_NAME = "sessions"
FILE_SUFFIX = ".session"
_decode_state = msgspec.json.Decoder(StorageState)
_log = logging.getLogger(__name__)


def sessions_dir(config: Config) -> Path:
    """``data_dir/sessions``, created (and kept) private to the user: mode 0700."""
    path = config.data_path / SESSIONS_DIR_NAME
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    return path


def session_file(config: Config, row: LoginSession) -> Path:
    """The encrypted file of ``row``, checked to lie inside ``data_dir/sessions``.

    The name comes from a database row, and a row is data: whoever can write to the database
    must not be able to make roomwatch read, decrypt or delete any other file (``../../x``, an
    absolute path, or a symlink placed in the folder that points elsewhere). The message names
    the session, never the name itself, which may be anything.

    Raises:
        SessionError: The name is not a plain file name, or it resolves outside the folder.
    """
    directory = sessions_dir(config)
    name = row.file_name
    refused = SessionError(
        f"session #{row.session_id}: its file name is not a plain name inside {directory}; "
        "refusing to use it (delete the session and capture it again)"
    )
    separators = {"/", "\\", "\0", os.sep} | ({os.altsep} if os.altsep else set())
    if not name or name in (".", "..") or any(sep in name for sep in separators):
        raise refused
    path = directory / name
    if path.resolve().parent != directory.resolve():  # a symlink leading out
        raise refused
    return path


def protect_state(state: StorageState) -> None:
    """Registers every cookie value of ``state`` as a secret to mask in logs."""
    for cookie in state.get("cookies", []):
        register_secret(cookie.get("value", ""))


def save_session(
    conn: Connection,
    config: Config,
    state: StorageState,
    *,
    account: str,
    method: Method,
    status: Status = "unknown",
    cipher: SessionCipher | None = None,
) -> LoginSession:
    """Encrypts ``state`` into a new file and adds its row; commits (see module docstring).

    Args:
        conn: Database connection; the row is committed unless an outer transaction is open.
        config: Where the data dir and the key are.
        state: The storage state to keep.
        account: The site account it belongs to (``unknown`` if not known).
        method: How it was captured.
        status: ``valid`` if it was just seen logged in (also sets ``last_verified_at``).
        cipher: A cipher to reuse; default: :func:`sessions.crypto.load_cipher`.
    """
    path = _write_state(config, state, cipher)
    with _removed_on_failure(path), conn.transaction():
        row = insert_login_session(
            conn, account=account, method=method, file_name=path.name, status=status
        )
    return _stored(row)


async def save_session_async(
    conn: AsyncConnection,
    config: Config,
    state: StorageState,
    *,
    account: str,
    method: Method,
    status: Status = "unknown",
) -> LoginSession:
    """:func:`save_session` on an asynchronous connection."""
    path = await anyio.to_thread.run_sync(partial(_write_state, config, state, None))
    with _removed_on_failure(path):
        async with conn.transaction():
            row = await insert_login_session_async(
                conn, account=account, method=method, file_name=path.name, status=status
            )
    return _stored(row)


@contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    """Removes the new file again if its row could not be added."""
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _stored(row: LoginSession) -> LoginSession:
    _log.info(
        "stored session #%d for %s (%s, %s)", row.session_id, row.account, row.method, row.status
    )
    return row


def _write_state(config: Config, state: StorageState, cipher: SessionCipher | None) -> Path:
    """Encrypts ``state`` into a new file of its own; its name goes into the row."""
    protect_state(state)
    cipher = cipher or load_cipher(config)
    path = sessions_dir(config) / (secrets.token_urlsafe(18) + FILE_SUFFIX)
    _write_private(path, cipher.encrypt(msgspec.json.encode(state)))
    return path


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # exactly 0600, whatever the umask
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def get_session(conn: Connection, session_id: int) -> LoginSession:
    """The row of a session.

    Raises:
        SessionError: There is no such session.
    """
    return _found(get_login_session(conn, session_id), session_id)


def _found(row: LoginSession | None, session_id: int) -> LoginSession:
    if row is None:
        raise SessionError(f"no session #{session_id} (roomwatch sessions list)")
    return row


def read_state(
    config: Config, row: LoginSession, cipher: SessionCipher | None = None
) -> StorageState:
    """Decrypts the storage state of ``row`` and registers its cookie values as secrets.

    Raises:
        SessionError: The file is missing, lies outside the sessions folder, or the key does
            not open it.
    """
    path = session_file(config, row)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise SessionError(
            f"session #{row.session_id}: its file {row.file_name} is missing from {path.parent}"
        ) from None
    except OSError as exc:
        raise SessionError(
            f"session #{row.session_id}: cannot read its file ({exc.strerror})"
        ) from None
    plaintext = (cipher or load_cipher(config)).decrypt(blob, name=row.file_name)
    try:
        state = _decode_state.decode(plaintext)
    except msgspec.DecodeError:
        raise SessionError(f"session file {row.file_name}: not a storage state") from None
    protect_state(state)
    return state


def load_session(
    conn: Connection, config: Config, session_id: int, cipher: SessionCipher | None = None
) -> tuple[LoginSession, StorageState]:
    """The row and the decrypted storage state of one session.

    Raises:
        SessionError: No such session, file missing, or the key does not open it.
    """
    row = get_session(conn, session_id)
    return row, read_state(config, row, cipher)


async def load_session_async(
    conn: AsyncConnection, config: Config, session_id: int
) -> tuple[LoginSession, StorageState]:
    """:func:`load_session` on an asynchronous connection."""
    row = _found(await get_login_session_async(conn, session_id), session_id)
    return row, await anyio.to_thread.run_sync(read_state, config, row)


def load_usable_session(
    conn: Connection, config: Config, account: str | None = None
) -> tuple[LoginSession, StorageState] | None:
    """The session a crawl should use (newest valid, else newest unverified; ``account``'s
    only, when given), or None."""
    row = usable_login_session(conn, account)
    return None if row is None else (row, read_state(config, row))


def record_status(conn: Connection, session_id: int, status: Status) -> LoginSession:
    """Stores a probe's decision and its time; commits like :func:`save_session`.

    Raises:
        SessionError: There is no such session (deleted meanwhile).
    """
    with conn.transaction():
        row = _found(set_login_session_status(conn, session_id, status), session_id)
    _log.info("session #%d is %s", session_id, status)
    return row


async def record_status_async(
    conn: AsyncConnection, session_id: int, status: Status
) -> LoginSession:
    """:func:`record_status` on an asynchronous connection."""
    async with conn.transaction():
        row = _found(await set_login_session_status_async(conn, session_id, status), session_id)
    _log.info("session #%d is %s", session_id, status)
    return row


def delete_session(conn: Connection, config: Config, session_id: int) -> LoginSession:
    """Removes the row and the encrypted file together; returns the removed row.

    A row whose file name points outside the sessions folder (:func:`session_file`) is still
    removed, so a tampered row can be got rid of, but no file is touched for it.

    Raises:
        SessionError: There is no such session.
    """
    with conn.transaction():
        row = _found(delete_login_session(conn, session_id), session_id)
        _remove_file(config, row)
    _log.info("deleted session #%d (%s)", session_id, row.account)
    return row


async def delete_session_async(
    conn: AsyncConnection, config: Config, session_id: int
) -> LoginSession:
    """:func:`delete_session` on an asynchronous connection."""
    async with conn.transaction():
        row = _found(await delete_login_session_async(conn, session_id), session_id)
        await anyio.to_thread.run_sync(_remove_file, config, row)
    _log.info("deleted session #%d (%s)", session_id, row.account)
    return row


def _remove_file(config: Config, row: LoginSession) -> None:
    """Removes the file of a row being deleted; a row naming a file outside the folder only
    loses its row."""
    try:
        path = session_file(config, row)
    except SessionError as exc:
        _log.warning("%s; removed the row only", exc)
    else:
        path.unlink(missing_ok=True)
