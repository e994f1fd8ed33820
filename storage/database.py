"""Which PostgreSQL to use and how to connect to it: the configured URL or the embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from roomwatch.config import Config, DatabaseConfig
from roomwatch.errors import DatabaseError
from storage.embedded import EmbeddedPostgres

# PostgreSQL aborted the transaction to let a concurrent one through (two writers touching the
# same persons in different orders, for one): running the whole transaction again is the cure.
TRANSIENT_ERRORS: tuple[type[psycopg.Error], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


@contextmanager
def open_database(config: Config) -> Iterator[str]:
    """Yields a connection string; with no ``database.url``, uses the embedded server.

    With ``database.url`` set, that server is used as is. Without it, the embedded cluster in
    ``data_dir/postgres`` is started, or joined if another roomwatch process runs it; on exit it
    is stopped only by its owner, and only if no other process still uses it (ownership rules
    in :mod:`storage.embedded`). Crawl processes never come here: they only connect.
    """
    if config.database.url:
        yield config.database.url
        return
    server = EmbeddedPostgres(config.data_path, config.database.embedded_os_user)
    conninfo = server.start()
    try:
        yield conninfo
    finally:
        server.stop()


def connect(conninfo: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """One connection, with a one-line error that never echoes the URL (it may hold a password)."""
    try:
        return psycopg.connect(conninfo, autocommit=autocommit)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise _cannot_connect(exc, conninfo) from None


async def connect_async(conninfo: str, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
    """:func:`connect` for asyncio (``kwargs`` go to psycopg), with the same one-line error."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise _cannot_connect(exc, conninfo) from None


def _cannot_connect(exc: psycopg.Error, conninfo: str) -> DatabaseError:
    if isinstance(exc, psycopg.ProgrammingError):
        # libpq could not parse the connection string, and its message quotes the string.
        return DatabaseError(
            "database: not a valid connection URL (not shown: it may hold a password)"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
    return DatabaseError(f"database: cannot connect ({_redact(first, conninfo)})")


def make_pool(conninfo: str, settings: DatabaseConfig) -> ConnectionPool:
    """A blocking pool for the CLI, the crawl pipelines and the scheduler."""
    return ConnectionPool(
        conninfo, min_size=settings.pool_min, max_size=settings.pool_max, open=False
    )


def make_async_pool(conninfo: str, settings: DatabaseConfig) -> AsyncConnectionPool:
    """An asyncio pool for the control API; the app's lifespan opens and closes it.

    Autocommit: the API's reads are single statements, and skipping BEGIN/COMMIT round trips
    made a person lookup about 30% faster; a route that writes opens its own transaction.

    Generic plans: psycopg prepares a statement on its fifth run per connection, and the API's
    statements read by key, key range or time range, so one plan suits every parameter. Left
    to choose, PostgreSQL kept planning the person list afresh: 0.3 of its 0.8 ms.
    """
    return AsyncConnectionPool(
        conninfo,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        open=False,
        kwargs={"autocommit": True},
        configure=_generic_plans,
    )


async def _generic_plans(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET plan_cache_mode = force_generic_plan")


def _redact(message: str, conninfo: str) -> str:
    try:
        password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        password = None
    return message.replace(str(password), "***") if password else message


# Session-level primitives the long-lived processes use on a connection of their own: advisory
# locks (held until unlocked or until the connection closes) and LISTEN.
LockKey = tuple[int, int]


def try_lock(conn: psycopg.Connection[Any], key: LockKey) -> bool:
    """Takes the session advisory lock ``key`` on ``conn`` (autocommit); False if another
    session holds it."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", list(key)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection[Any], key: LockKey) -> None:
    """Lets go of a lock :func:`try_lock` took on ``conn``."""
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", list(key))


def listen(conn: psycopg.Connection[Any], channel: str) -> None:
    """``LISTEN`` on ``channel`` (a constant name, never user input); read with
    ``conn.notifies()``."""
    conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))


async def listen_async(conn: psycopg.AsyncConnection[Any], channel: str) -> None:
    """:func:`listen` on an asynchronous connection."""
    await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))


async def ping_async(conn: psycopg.AsyncConnection[Any]) -> None:
    """One round trip (``SELECT 1``): raises ``psycopg.Error`` when the server does not answer."""
    await conn.execute("SELECT 1")
