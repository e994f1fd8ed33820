"""SQL for the ``login_sessions`` table: metadata of stored login sessions, never their secrets.

A row says whose session it is, how it was captured, when it was last checked and with what
outcome, and which encrypted file under ``data_dir/sessions`` holds it. Cookie values live only
in that file (``sessions/store.py`` keeps the two together). The functions run inside the
caller's transaction; each has an ``_async`` twin for the API's connections.
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
        file_name: The encrypted file in ``data_dir/sessions``.
    """

    session_id: int
    account: str
    method: Method
    captured_at: dt.datetime
    last_verified_at: dt.datetime | None
    status: Status
    file_name: str


_COLUMNS = "session_id, account, method, captured_at, last_verified_at, status, file_name"

INSERT_SESSION = f"""
INSERT INTO login_sessions (account, method, status, last_verified_at, file_name)
VALUES (%(account)s, %(method)s, %(status)s,
        CASE WHEN %(status)s = 'unknown' THEN NULL ELSE now() END, %(file_name)s)
RETURNING {_COLUMNS}
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
    conn: Connection, *, account: str, method: Method, file_name: str, status: Status = "unknown"
) -> LoginSession:
    """Adds a row; a status other than ``unknown`` also sets ``last_verified_at`` to now."""
    params = {"account": account, "method": method, "status": status, "file_name": file_name}
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
    """Removes the row and returns it (None if there was none); the file is the caller's."""
    with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return cur.execute(DELETE_SESSION, {"session_id": session_id}).fetchone()


async def insert_login_session_async(
    conn: AsyncConnection,
    *,
    account: str,
    method: Method,
    file_name: str,
    status: Status = "unknown",
) -> LoginSession:
    """:func:`insert_login_session` on an asynchronous connection."""
    params = {"account": account, "method": method, "status": status, "file_name": file_name}
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


async def _one_async(
    conn: AsyncConnection, query: str, params: dict[str, Any]
) -> LoginSession | None:
    async with conn.cursor(row_factory=class_row(LoginSession)) as cur:
        return await (await cur.execute(query, params)).fetchone()
