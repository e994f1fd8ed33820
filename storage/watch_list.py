"""The watch list: persons the user asked to follow closely (``persons.watch``).

A watched person is a person of interest like a followed one (``storage/targets.py``: CBHours
stats, thumbnails). Watching a username never seen creates the person, so the next crawls ask
about them; unwatching one never seen changes nothing and creates nobody (the answer, "not
watched", is already true). ``person_summary`` follows ``persons.watch`` through its triggers
(migration 0007), which also notify ``roomwatch_persons`` for the API's person cache.

Usernames are expected checked and lower-cased by the caller (the API and the CLI check them
with the parsers' own rule, :func:`formats.markup.valid_username`). Each write has a twin for
the control API's asynchronous connection; both run the same statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg

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


# Watch: create whoever is new; an unchanged row is not rewritten (no trigger work, no notify).
_WATCH = """
WITH names AS (SELECT DISTINCT unnest(%(names)s::text[]) AS username),
created AS (
    INSERT INTO persons AS p (username, watch) SELECT username, true FROM names
    ON CONFLICT (username) DO UPDATE SET watch = true WHERE NOT p.watch
)
SELECT username, true FROM names ORDER BY username
"""
_UNWATCH = """
WITH names AS (SELECT DISTINCT unnest(%(names)s::text[]) AS username),
changed AS (
    UPDATE persons p SET watch = false FROM names n WHERE p.username = n.username AND p.watch
)
SELECT username, false FROM names ORDER BY username
"""
_WATCHED = "SELECT username, watch FROM persons WHERE watch ORDER BY username"


def _statement(usernames: Sequence[str], watch: bool) -> tuple[str, dict[str, Any]]:
    if isinstance(usernames, str):  # a str is a Sequence[str] too: "bob" would watch b and o
        raise TypeError("usernames: a sequence of usernames, not one string")
    return (_WATCH if watch else _UNWATCH), {"names": list(usernames)}


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
    return _states(conn.execute(_WATCHED).fetchall())
