"""The accounts of this install (``accounts``, migration 0020), and which one a request means.

An account is the owner's username on the site, lower case. Rows come into being where the
install first meets an account (a login session naming it, the Events stream's position, a
Stats API answer: triggers of migration 0020) or by :func:`add_account`. Follow state, follow
events, complete list checks and the per-account spiders' jobs and schedules name one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from roomwatch.errors import InvalidInput

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

_ALL = "SELECT account FROM accounts ORDER BY account"
_ADD = "INSERT INTO accounts (account) VALUES (%s) ON CONFLICT DO NOTHING"


def list_accounts(conn: Connection) -> list[str]:
    """Every account, by name."""
    return [str(row[0]) for row in conn.execute(_ALL)]


async def list_accounts_async(conn: AsyncConnection) -> list[str]:
    """:func:`list_accounts` on an asynchronous connection."""
    cursor = await conn.execute(_ALL)
    return [str(row[0]) for row in await cursor.fetchall()]


def add_account(conn: Connection, account: str) -> str:
    """Records ``account`` (any case; kept lower case) if new; returns it as stored."""
    name = account.strip().lower()
    if not name or name == "unknown":
        raise InvalidInput("account", "expected the account's username")
    conn.execute(_ADD, [name])
    return name


def choose_account(known: Sequence[str], given: str | None) -> str | None:
    """The account a request means: ``given`` (any case), else the only one.

    Returns None when the install has no account yet (nothing is followed by anyone).

    Raises:
        InvalidInput: ``given`` is not an account of this install, or none was given and there
            are several (the message names them).
    """
    choices = ", ".join(known)
    if given is not None and given.strip():
        name = given.strip().lower()
        if name not in known:
            raise InvalidInput(
                "account", f"no account {name!r} here (accounts: {choices or 'none yet'})", "query"
            )
        return name
    if len(known) > 1:
        raise InvalidInput("account", f"several accounts: name one of {choices}", "query")
    return known[0] if known else None
