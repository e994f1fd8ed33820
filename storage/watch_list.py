"""The watch list: persons the user asked to follow closely (``persons.watch``).

A watched person is a person of interest like a followed one (``storage/targets.py``: CBHours
stats, thumbnails). Watching a username never seen creates the person, so the next crawls ask
about them; unwatching one never seen changes nothing and creates nobody (the answer, "not
watched", is already true). ``person_summary`` follows ``persons.watch`` through its triggers
(migration 0007), which also notify ``roomwatch_persons`` for the API's person cache.

A person can also be muted (``persons.alerts_muted``): their going live is then never told
(``storage/notices.py``), whether watched or followed. Muting a username never seen creates the
person, so the mute holds when they appear; unmuting one creates nobody.

Usernames are expected checked and lower-cased by the caller (the API and the CLI check them
with the parsers' own rule, :func:`formats.markup.valid_username`). Each write has a twin for
the control API's asynchronous connection; both run the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import sql

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]


class WatchState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a person is on the watch list.

    Attributes:
        username: lower-cased.
        watch: true: watched (a person of interest).
    """

    username: str
    watch: bool


# Set a flag: create whoever is new; an unchanged row is not rewritten (no trigger work, no
# notify). Clear it: only rows that had it. Both composed for a persons column (watch,
# alerts_muted), so the two lists follow one rule.
_SET = """
WITH names AS (SELECT DISTINCT unnest(%(names)s::text[]) AS username),
created AS (
    INSERT INTO persons AS p (username, {column}) SELECT username, true FROM names
    ON CONFLICT (username) DO UPDATE SET {column} = true WHERE NOT p.{column}
)
SELECT username, true FROM names ORDER BY username
"""
_CLEAR = """
WITH names AS (SELECT DISTINCT unnest(%(names)s::text[]) AS username),
changed AS (
    UPDATE persons p SET {column} = false FROM names n WHERE p.username = n.username AND p.{column}
)
SELECT username, false FROM names ORDER BY username
"""
_LISTED = "SELECT username, {column} FROM persons WHERE {column} ORDER BY username"


def _flag_statement(
    column: str, usernames: Sequence[str], value: bool
) -> tuple[sql.Composed, dict[str, Any]]:
    if isinstance(usernames, str):  # a str is a Sequence[str] too: "bob" would watch b and o
        raise TypeError("usernames: a sequence of usernames, not one string")
    statement = sql.SQL(_SET if value else _CLEAR).format(column=sql.Identifier(column))
    return statement, {"names": list(usernames)}


def _listed(column: str) -> sql.Composed:
    return sql.SQL(_LISTED).format(column=sql.Identifier(column))


def _statement(usernames: Sequence[str], watch: bool) -> tuple[sql.Composed, dict[str, Any]]:
    return _flag_statement("watch", usernames, watch)


def _states(rows: Sequence[tuple[Any, ...]]) -> list[WatchState]:
    return [WatchState(username=row[0], watch=row[1]) for row in rows]


def set_watch(conn: Connection, usernames: Sequence[str], watch: bool) -> list[WatchState]:
    """Puts ``usernames`` on the watch list (``watch``) or takes them off, in one statement;
    returns their states now, by username."""
    return _states(conn.execute(*_statement(usernames, watch)).fetchall())


async def set_watch_async(
    conn: AsyncConnection, usernames: Sequence[str], watch: bool
) -> list[WatchState]:
    """:func:`set_watch` on an asynchronous connection."""
    cursor = await conn.execute(*_statement(usernames, watch))
    return _states(await cursor.fetchall())


def watched(conn: Connection) -> list[WatchState]:
    """Everyone on the watch list, by username."""
    return _states(conn.execute(_listed("watch")).fetchall())


class MuteState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a person's going live is kept quiet.

    Attributes:
        username: lower-cased.
        mute: true: their going live is never told.
    """

    username: str
    mute: bool


_IS_MUTED = "SELECT alerts_muted FROM persons WHERE username = %s"


def _mute_statement(usernames: Sequence[str], mute: bool) -> tuple[sql.Composed, dict[str, Any]]:
    return _flag_statement("alerts_muted", usernames, mute)


def _mute_states(rows: Sequence[tuple[Any, ...]]) -> list[MuteState]:
    return [MuteState(username=row[0], mute=row[1]) for row in rows]


def set_mute(conn: Connection, usernames: Sequence[str], mute: bool) -> list[MuteState]:
    """Mutes ``usernames`` (``mute``) or unmutes them, in one statement; returns their states
    now, by username."""
    return _mute_states(conn.execute(*_mute_statement(usernames, mute)).fetchall())


async def set_mute_async(
    conn: AsyncConnection, usernames: Sequence[str], mute: bool
) -> list[MuteState]:
    """:func:`set_mute` on an asynchronous connection."""
    cursor = await conn.execute(*_mute_statement(usernames, mute))
    return _mute_states(await cursor.fetchall())


def muted(conn: Connection) -> list[MuteState]:
    """Everyone muted, by username."""
    return _mute_states(conn.execute(_listed("alerts_muted")).fetchall())


async def is_muted_async(conn: AsyncConnection, username: str) -> bool:
    """Whether ``username`` is muted (False for a person never seen)."""
    cursor = await conn.execute(_IS_MUTED, [username])
    row = await cursor.fetchone()
    return bool(row and row[0])
