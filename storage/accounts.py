"""The accounts of this install (``accounts``, migration 0020), and which one a request means.

An account is the owner's username on the site, lower case. Rows come into being where the
install first meets an account (a login session naming it, the Events stream's position, a
Stats API answer: triggers of migration 0020) or by :func:`add_account`. Follow state, follow
events, complete list checks and the per-account spiders' jobs and schedules name one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg

from roomwatch.errors import AccountNotChosen, InvalidInput

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]


class AccountChoice(msgspec.Struct, frozen=True, kw_only=True):
    """Whose follow state a request reads.

    Attributes:
        account: the account (None: the install has none yet, so nobody follows anyone).
        several: the install has several accounts: the any-account columns of ``persons`` and
            ``person_summary`` are not this account's, so reads go to ``account_persons``.
        known: every account of the install (the pages' account switcher lists them).
    """

    account: str | None
    several: bool
    known: tuple[str, ...] = ()


_ALL = "SELECT account FROM accounts ORDER BY account"
_ADD = "INSERT INTO accounts (account) VALUES (%s) ON CONFLICT DO NOTHING"


def list_accounts(conn: Connection) -> list[str]:
    """Every account, by name."""
    return [str(row[0]) for row in conn.execute(_ALL)]


async def list_accounts_async(conn: AsyncConnection) -> list[str]:
    """:func:`list_accounts` on an asynchronous connection."""
    cursor = await conn.execute(_ALL)
    return [str(row[0]) for row in await cursor.fetchall()]


def account_name(account: str) -> str:
    """``account`` as stored (lower case).

    Raises:
        InvalidInput: empty, or ``unknown`` (a login session whose account was not detected).
    """
    name = account.strip().lower()
    if not name or name == "unknown":
        raise InvalidInput("account", "expected the account's username (it is not known)")
    return name


def add_account(conn: Connection, account: str) -> str:
    """Records ``account`` (any case; kept lower case) if new; returns it as stored."""
    name = account_name(account)
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
        raise AccountNotChosen(known)
    return known[0] if known else None


async def resolve_account_async(
    conn: AsyncConnection, given: str | None, *, required: bool = True
) -> AccountChoice:
    """The account a request means (:func:`choose_account`), with whether there are several.

    ``required=False`` (a person list that filters on no follow state): with several accounts
    and none named, the rows say what any account knows (``account`` None, ``several`` False:
    the stored any-account columns).

    Raises:
        InvalidInput: as :func:`choose_account`.
    """
    return account_choice(await list_accounts_async(conn), given, required=required)


def account_choice(
    known: Sequence[str], given: str | None, *, required: bool = True
) -> AccountChoice:
    """:func:`resolve_account_async` on the accounts ``known`` (read already).

    Raises:
        InvalidInput: as :func:`choose_account`.
    """
    if not required and len(known) > 1 and not (given and given.strip()):
        return AccountChoice(account=None, several=False, known=tuple(known))
    return AccountChoice(
        account=choose_account(known, given), several=len(known) > 1, known=tuple(known)
    )


def account_of_pages(
    known: Sequence[str], given: str | None, shown: str, *, required: bool = True
) -> str | None:
    """Whose saved pages an import holds: ``given`` (``account=``, ``--account``), else the
    account their header shows, else the install's only account. A new name is fine (the
    import brings the account in); a name that contradicts the pages is not. ``required=False``
    (pages that change no follow state): None when it cannot be known.

    Raises:
        InvalidInput: ``given`` differs from the pages' header, or (``required``) neither names
            one and the install has no account or several (the message names them).
    """
    name = given.strip().lower() if given and given.strip() else ""
    if name and shown and name != shown.lower():
        raise InvalidInput("account", f"the pages are {shown.lower()}'s, not {name}'s")
    if name or shown:
        return name or shown.lower()
    if len(known) == 1 or not required:
        return known[0] if len(known) == 1 else None
    if not known:
        raise InvalidInput("account", "the pages do not show whose they are: name the account")
    return choose_account(known, None)
