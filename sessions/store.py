"""Stored login sessions: the encrypted storage state and its metadata, one PostgreSQL row.

A session is a Playwright storage state (cookies and per-origin local storage). It is encrypted
(``sessions.crypto``) and stored in its ``login_sessions`` row (``state``), so a crawl on any
machine that reaches the database and has the key (``ROOMWATCH_SECRET_KEY``) can use it, and
nothing needs copying between machines. Reads of metadata never fetch the state
(``storage/login_sessions.py``); only loading a session does, and decrypts it here. Every cookie
value that passes through here is registered with :func:`roomwatch.logs.register_secret`, so a
log line can never show it.

Before migration 0018 the state was a file, ``data_dir/sessions/<random>.session`` (0600), named
by the row. :func:`carry_session_files` moves such files into their rows when the agent or the
CLI migrates: the content as it is (same key, same format, nothing decrypted), then the file is
removed, then the row forgets its name; each step repeats harmlessly after a crash.

Each function that takes a database connection has an ``_async`` twin (the control API's),
which does the same on an ``AsyncConnection`` and its decryption in a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
from functools import partial
from pathlib import Path

import anyio.to_thread
import msgspec
from playwright.async_api import StorageState
from psycopg import pq

from roomwatch.config import Config
from roomwatch.errors import SessionError
from roomwatch.logs import register_secret
from sessions.crypto import SessionCipher, load_cipher
from storage.login_sessions import (
    AsyncConnection,
    Connection,
    LegacyFile,
    LoginSession,
    Method,
    Status,
    carry_login_session_state,
    delete_login_session,
    delete_login_session_async,
    forget_login_session_file,
    get_login_session,
    get_login_session_async,
    insert_login_session,
    insert_login_session_async,
    legacy_session_files,
    lock_legacy_session_file,
    login_session_state,
    login_session_state_async,
    set_login_session_status,
    set_login_session_status_async,
    usable_login_session,
)

SESSIONS_DIR_NAME = "sessions"
"""The folder under ``data_dir`` that held session files before migration 0018."""
_decode_state = msgspec.json.Decoder(StorageState)
_log = logging.getLogger(__name__)


def sessions_dir(config: Config) -> Path:
    """``data_dir/sessions``, where session files were kept before migration 0018."""
    return config.data_path / SESSIONS_DIR_NAME


def legacy_file(config: Config, legacy: LegacyFile) -> Path:
    """The file a legacy row names, checked to lie inside ``data_dir/sessions``.

    The name comes from a database row, and a row is data: whoever can write to the database
    must not be able to make roomwatch read or delete any other file (``../../x``, an absolute
    path, or a symlink placed in the folder that points elsewhere). The message names the
    session, never the name itself, which may be anything.

    Raises:
        SessionError: The name is not a plain file name, or it resolves outside the folder.
    """
    directory = sessions_dir(config)
    name = legacy.file_name
    refused = SessionError(
        f"session #{legacy.session_id}: its file name is not a plain name inside {directory}; "
        "not carried into the database (delete the session and capture it again)"
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
    """Encrypts ``state`` and adds its row; commits unless an outer transaction is open.

    Args:
        conn: Database connection.
        config: Where the key is.
        state: The storage state to keep.
        account: The site account it belongs to (``unknown`` if not known).
        method: How it was captured.
        status: ``valid`` if it was just seen logged in (also sets ``last_verified_at``).
        cipher: A cipher to reuse; default: :func:`sessions.crypto.load_cipher`.
    """
    sealed = _seal(config, state, cipher)
    with conn.transaction():
        row = insert_login_session(
            conn, account=account, method=method, state=sealed, status=status
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
    sealed = await anyio.to_thread.run_sync(partial(_seal, config, state, None))
    async with conn.transaction():
        row = await insert_login_session_async(
            conn, account=account, method=method, state=sealed, status=status
        )
    return _stored(row)


def _stored(row: LoginSession) -> LoginSession:
    _log.info(
        "stored session #%d for %s (%s, %s)", row.session_id, row.account, row.method, row.status
    )
    return row


def _seal(config: Config, state: StorageState, cipher: SessionCipher | None) -> bytes:
    """The encrypted form of ``state`` that its row keeps."""
    protect_state(state)
    return (cipher or load_cipher(config)).encrypt(msgspec.json.encode(state))


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
    config: Config, row: LoginSession, sealed: bytes | None, cipher: SessionCipher | None = None
) -> StorageState:
    """Decrypts the stored state of ``row`` and registers its cookie values as secrets.

    Raises:
        SessionError: The row has no state (a file from before migration 0018 that was missing
            when it was to be carried in), or the key does not open it.
    """
    if sealed is None:
        raise SessionError(
            f"session #{row.session_id} has no stored state (its file was not carried into "
            "the database); delete it and log in again"
        )
    name = f"#{row.session_id}"
    plaintext = (cipher or load_cipher(config)).decrypt(sealed, name=name)
    try:
        state = _decode_state.decode(plaintext)
    except msgspec.DecodeError:
        raise SessionError(f"session #{row.session_id}: not a storage state") from None
    protect_state(state)
    return state


def load_session(
    conn: Connection, config: Config, session_id: int, cipher: SessionCipher | None = None
) -> tuple[LoginSession, StorageState]:
    """The row and the decrypted storage state of one session.

    Raises:
        SessionError: No such session, no state, or the key does not open it.
    """
    row = get_session(conn, session_id)
    return row, read_state(config, row, login_session_state(conn, session_id), cipher)


async def load_session_async(
    conn: AsyncConnection, config: Config, session_id: int
) -> tuple[LoginSession, StorageState]:
    """:func:`load_session` on an asynchronous connection."""
    row = _found(await get_login_session_async(conn, session_id), session_id)
    sealed = await login_session_state_async(conn, session_id)
    return row, await anyio.to_thread.run_sync(read_state, config, row, sealed)


def load_usable_session(
    conn: Connection, config: Config, account: str | None = None
) -> tuple[LoginSession, StorageState] | None:
    """The session a crawl should use (newest valid, else newest unverified; ``account``'s
    only, when given), or None."""
    row = usable_login_session(conn, account)
    if row is None:
        return None
    return row, read_state(config, row, login_session_state(conn, row.session_id))


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
    """Removes the session (its row, state and all); returns the removed row.

    Raises:
        SessionError: There is no such session.
    """
    with conn.transaction():
        row = _found(delete_login_session(conn, session_id), session_id)
    _log.info("deleted session #%d (%s)", session_id, row.account)
    return row


async def delete_session_async(
    conn: AsyncConnection, config: Config, session_id: int
) -> LoginSession:
    """:func:`delete_session` on an asynchronous connection."""
    async with conn.transaction():
        row = _found(await delete_login_session_async(conn, session_id), session_id)
    _log.info("deleted session #%d (%s)", session_id, row.account)
    return row


def _carried_file(conn: Connection, config: Config, legacy: LegacyFile) -> Path | None:
    """Stores a locked legacy row's file as its state (unless it holds it already); the file
    to remove then, or None when it cannot be carried (said in a warning)."""
    try:
        path = legacy_file(config, legacy)
    except SessionError as exc:
        _log.warning("%s", exc)
        return None
    if legacy.carried:
        return path
    try:
        sealed = path.read_bytes()
    except OSError as exc:
        _log.warning(
            "session #%d: its file could not be carried into the database (%s); "
            "delete the session and log in again",
            legacy.session_id,
            exc.strerror,
        )
        return None
    carry_login_session_state(conn, legacy.session_id, legacy.file_name, sealed)
    return path


def carry_session_files(conn: Connection, config: Config) -> int:
    """Moves session files from before migration 0018 into their rows; returns how many.

    For each row that still names a file: its content, as it is, becomes the row's state
    (committed), then the file is removed, then the row forgets the name. A row whose state is
    already stored (a crash came between) only has its file removed. A file that is missing, or
    a name that is not a plain file inside ``data_dir/sessions``, is not read: the row stays
    without a state (loading it says so) and a warning names the session. Files no row names
    are left alone; the folder goes once it is empty. Run by :func:`agent.runtime.migrate` and
    the ``sessions``/``login`` CLI.
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.commit()  # each step below must be committed before the next one
    with conn.transaction():
        rows = legacy_session_files(conn)
    carried = 0
    for candidate in rows:
        # One carrier per row at a time (an agent and a CLI starting together): the row is
        # locked, and read again, while its file is read and its state stored.
        with conn.transaction():
            legacy = lock_legacy_session_file(conn, candidate.session_id)
            path = _carried_file(conn, config, legacy) if legacy is not None else None
            if legacy is not None and path is not None and not legacy.carried:
                carried += 1
        if legacy is None or path is None:
            continue
        path.unlink(missing_ok=True)  # only now: its row holds the content
        with conn.transaction():
            forget_login_session_file(conn, legacy.session_id, legacy.file_name)
    if rows:
        with contextlib.suppress(OSError):  # not empty: files no row named, left alone
            sessions_dir(config).rmdir()
    if carried:
        _log.info("carried %d session file(s) into the database", carried)
    return carried
