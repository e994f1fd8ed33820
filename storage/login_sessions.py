"""SQL for the ``login_sessions`` table: stored login sessions, their metadata and encrypted state.

A row says whose session it is, how it was captured, when it was last checked and with what
outcome, and holds the encrypted storage state (``state``, written and read only through
``sessions/store.py``, which encrypts and decrypts it). Every read of metadata names its
columns (:data:`_COLUMNS`), so listing or checking sessions never fetches a state; only
:func:`login_session_state` does. ``file_name`` is left from before migration 0018, when the
state was a file under ``data_dir/sessions``: it names a file still to be carried in
(:func:`legacy_session_files`). The functions run inside the caller's transaction; each has an
``_async`` twin for the API's connections where the API needs one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.rows import class_row

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
Method = Literal["interactive", "form", "import"]
Status = Literal["valid", "expired", "unknown"]


class LoginSession(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``login_sessions``.

    Attributes:
        session_id: The id users pass to ``roomwatch sessions verify|delete``.
        account: The site account the session belongs to (``unknown`` when not detected).
        method: How it was captured: ``interactive``, ``form`` or ``import``.
        captured_at: When it was stored.
        last_verified_at: When the logged-in probe last decided valid or expired.
        status: The probe's last decision, ``unknown`` before the first one.
    """

    session_id: int
    account: str
    method: Method
    captured_at: dt.datetime
    last_verified_at: dt.datetime | None
    status: Status


class LegacyFile(msgspec.Struct, frozen=True):
    """A session row that still names a file from before migration 0018.

    Attributes:
        session_id: The session.
        file_name: Its encrypted file in ``data_dir/sessions`` (a name from a row: check it).
        carried: Whether ``state`` already holds the file's content (only removal is left).
    """

    session_id: int
    file_name: str
    carried: bool


_COLUMNS = "session_id, account, method, captured_at, last_verified_at, status"

INSERT_SESSION = f"""
INSERT INTO login_sessions (account, method, status, last_verified_at, state)
VALUES (%(account)s, %(method)s, %(status)s,
        CASE WHEN %(status)s = 'unknown' THEN NULL ELSE now() END, %(state)s)
RETURNING {_COLUMNS}
"""

STATE_OF = "SELECT state FROM login_sessions WHERE session_id = %(session_id)s"

LEGACY_FILES = """
SELECT session_id, file_name, state IS NOT NULL AS carried FROM login_sessions
WHERE file_name IS NOT NULL ORDER BY session_id
"""

LOCK_LEGACY_FILE = """
SELECT session_id, file_name, state IS NOT NULL AS carried FROM login_sessions
WHERE session_id = %(session_id)s AND file_name IS NOT NULL FOR UPDATE
"""

# Only a state not stored yet is filled: a second carrier, or a rerun, changes nothing.
CARRY_STATE = """
UPDATE login_sessions SET state = %(state)s
WHERE session_id = %(session_id)s AND state IS NULL AND file_name = %(file_name)s
"""

FORGET_FILE = """
UPDATE login_sessions SET file_name = NULL
WHERE session_id = %(session_id)s AND state IS NOT NULL AND file_name = %(file_name)s
"""

SESSION_BY_ID = f"SELECT {_COLUMNS} FROM login_sessions WHERE session_id = %(session_id)s"

ALL_SESSIONS = f"SELECT {_COLUMNS} FROM login_sessions ORDER BY session_id"

# The one a crawl should use: a verified one first, then the newest not known to be expired
# (of one account, when the crawl names it).
USABLE_SESSION = f"""
SELECT {_COLUMNS} FROM login_sessions
WHERE status <> 'expired' AND (account = %(account)s OR %(account)s::text IS NULL)
ORDER BY (status = 'valid') DESC, captured_at DESC, session_id DESC LIMIT 1
"""

SET_STATUS = f"""
UPDATE login_sessions SET status = %(status)s, last_verified_at = now()
WHERE session_id = %(session_id)s
RETURNING {_COLUMNS}
"""

DELETE_SESSION = (
    f"DELETE FROM login_sessions WHERE session_id = %(session_id)s RETURNING {_COLUMNS}"
)


def insert_login_session(
    conn: Connection, *, account: str, method: Method, state: bytes, status: Status = "unknown"
) -> LoginSession:
    """Adds a row holding the encrypted ``state``; a status other than ``unknown`` also sets
    ``last_verified_at`` to now."""
    params = {"account": account, "method": method, "status": status, "state": state}
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        row = cur.execute(INSERT_SESSION, params).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


def get_login_session(conn: Connection, session_id: int) -> LoginSession | None:
    """The row with this id, or None."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(SESSION_BY_ID, {"session_id": session_id}).fetchone()


def list_login_sessions(conn: Connection) -> list[LoginSession]:
    """Every row, oldest first."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(ALL_SESSIONS).fetchall()


def usable_login_session(conn: Connection, account: str | None = None) -> LoginSession | None:
    """The session a crawl should use: newest valid, else newest unverified; None if none.
    ``account``: only that account's (lower case)."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(USABLE_SESSION, {"account": account}).fetchone()


def set_login_session_status(
    conn: Connection, session_id: int, status: Status
) -> LoginSession | None:
    """Records a probe's decision (and its time); None if there is no such row."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(SET_STATUS, {"session_id": session_id, "status": status}).fetchone()


def delete_login_session(conn: Connection, session_id: int) -> LoginSession | None:
    """Removes the row and returns it (None if there was none)."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(DELETE_SESSION, {"session_id": session_id}).fetchone()


def login_session_state(conn: Connection, session_id: int) -> bytes | None:
    """The encrypted state of a session; None if there is no such row or it has no state yet
    (a file from before migration 0018 that could not be carried in)."""
    row = conn.execute(STATE_OF, {"session_id": session_id}).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def legacy_session_files(conn: Connection) -> list[LegacyFile]:
    """The rows that still name a file from before migration 0018, oldest first."""
    with conn.cursor(row_factory=class_row(LegacyFile)) as cur:
        return cur.execute(LEGACY_FILES).fetchall()


def lock_legacy_session_file(conn: Connection, session_id: int) -> LegacyFile | None:
    """Locks a legacy row until the transaction ends and reads it again; None if it no longer
    names a file (carried meanwhile, or deleted)."""
    with conn.cursor(row_factory=class_row(LegacyFile)) as cur:
        return cur.execute(LOCK_LEGACY_FILE, {"session_id": session_id}).fetchone()


def carry_login_session_state(
    conn: Connection, session_id: int, file_name: str, state: bytes
) -> None:
    """Stores a legacy file's content as the row's state, if the row still has none."""
    params = {"session_id": session_id, "file_name": file_name, "state": state}
    conn.execute(CARRY_STATE, params)


def forget_login_session_file(conn: Connection, session_id: int, file_name: str) -> None:
    """Clears the name of a legacy file once it is removed (only on a row holding its state)."""
    conn.execute(FORGET_FILE, {"session_id": session_id, "file_name": file_name})


async def insert_login_session_async(
    conn: AsyncConnection,
    *,
    account: str,
    method: Method,
    state: bytes,
    status: Status = "unknown",
) -> LoginSession:
    """:func:`insert_login_session` on an asynchronous connection."""
    params = {"account": account, "method": method, "status": status, "state": state}
    async with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        row = await (await cur.execute(INSERT_SESSION, params)).fetchone()
    assert row is not None  # INSERT ... RETURNING always returns the row
    return row


async def get_login_session_async(conn: AsyncConnection, session_id: int) -> LoginSession | None:
    """:func:`get_login_session` on an asynchronous connection."""
    return await _one_async(conn, SESSION_BY_ID, {"session_id": session_id})


async def list_login_sessions_async(conn: AsyncConnection) -> list[LoginSession]:
    """:func:`list_login_sessions` on an asynchronous connection."""
    async with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return await (await cur.execute(ALL_SESSIONS)).fetchall()


async def set_login_session_status_async(
    conn: AsyncConnection, session_id: int, status: Status
) -> LoginSession | None:
    """:func:`set_login_session_status` on an asynchronous connection."""
    return await _one_async(conn, SET_STATUS, {"session_id": session_id, "status": status})


async def delete_login_session_async(conn: AsyncConnection, session_id: int) -> LoginSession | None:
    """:func:`delete_login_session` on an asynchronous connection."""
    return await _one_async(conn, DELETE_SESSION, {"session_id": session_id})


async def login_session_state_async(conn: AsyncConnection, session_id: int) -> bytes | None:
    """:func:`login_session_state` on an asynchronous connection."""
    cur = await conn.execute(STATE_OF, {"session_id": session_id})
    row = await cur.fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


async def _one_async(
    conn: AsyncConnection, query: str, params: dict[str, Any]
) -> LoginSession | None:
    async with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return await (await cur.execute(query, params)).fetchone()
