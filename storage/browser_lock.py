"""One browser per account: a session advisory lock per account, held by its browser crawl.

The site sees a browser crawl as the account's logged-in visitor; two at once (on two machines,
or a crawl and a ``roomwatch crawl``) look like two logins. So a browser crawl holds the lock of
its session's account (:func:`account_lock_key`: a hash of the username, so it needs no row
and fits however accounts are stored) on a connection of its own for its whole run; the lock
goes when the crawl closes that connection or dies (PostgreSQL ends the session).
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from storage.database import LockKey, try_lock

NAMESPACE = 0x726F6F62
"""The advisory lock namespace of the account locks (the others: storage/jobs.py, migrator)."""


def account_lock_key(account: str) -> LockKey:
    """The advisory lock key of ``account`` (its username, case-insensitive)."""
    digest = hashlib.sha256(account.strip().lower().encode("utf-8")).digest()
    return NAMESPACE, int.from_bytes(digest[:4], "big", signed=True)


def take_account_lock(conn: psycopg.Connection[Any], account: str) -> bool:
    """Takes the account's lock on ``conn`` (autocommit, kept open for the crawl); False when
    another session holds it."""
    return try_lock(conn, account_lock_key(account))


def account_lock_held(conn: psycopg.Connection[Any], account: str) -> bool:
    """Whether any session holds the account's lock now."""
    namespace, key = account_lock_key(account)
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = %s::bigint::oid AND objid = (%s::bigint & 4294967295)::oid"
        " AND objsubid = 2)",
        [namespace, key],
    ).fetchone()
    return bool(row and row[0])
