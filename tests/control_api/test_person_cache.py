"""The API's person cache: hits skip the database, and no write or passing time is missed."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from control_api.person_cache import APPLICATION_NAME, PersonCache
from roomwatch.config import DatabaseConfig
from roomwatch.errors import InvalidInput
from storage.database import make_async_pool
from storage.follow_state import reconcile
from tests.storage.merge_cases import observe

Scenario = Callable[[PersonCache, AsyncConnectionPool[Any]], Awaitable[None]]


def _run(db_url: str, scenario: Scenario, size: int = 100) -> None:
    """Runs ``scenario`` with a started cache (listening, unless ``size`` is 0) over a pool."""

    async def main() -> None:
        pool = make_async_pool(db_url, DatabaseConfig())
        await pool.open(wait=True)
        cache = PersonCache(pool, db_url, size=size)
        await cache.start()
        try:
            if size:
                await _until(lambda: _true(cache.listening), "the cache never listened")
            await scenario(cache, pool)
        finally:
            await cache.stop()
            await pool.close()

    asyncio.run(main())


async def _true(value: bool) -> bool:
    return value


async def _until(check: Callable[[], Awaitable[bool]], message: str, seconds: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.02)


def _reads(pool: AsyncConnectionPool[Any]) -> int:
    return int(pool.get_stats().get("requests_num", 0))


def _person(db_url: str, username: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO persons (username) VALUES (%s) RETURNING person_id", [username]
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_repeated_read_is_served_without_the_database(db_url: str) -> None:
    _person(db_url, "alice")

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        first = await cache.get("Alice")
        before = _reads(pool)
        again = await cache.get("alice")
        assert first is not None and again == first
        assert _reads(pool) == before
        assert await cache.get("nobody") is None

    _run(db_url, scenario)


def test_a_write_by_another_process_is_seen_by_the_next_reads(db_url: str) -> None:
    person_id = _person(db_url, "bob")

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        read = await cache.get("bob")
        assert read is not None and read.watch is False
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE persons SET watch = true WHERE person_id = %s", [person_id])

        async def watched() -> bool:
            person = await cache.get("bob")
            return person is not None and person.watch

        await _until(watched, "the cache kept the merge from before the write", seconds=2)

    _run(db_url, scenario)


def test_an_entry_expires_when_time_alone_moves_the_merge(db_url: str) -> None:
    person_id = _person(db_url, "carol")

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            almost = dt.timedelta(minutes=10) - dt.timedelta(seconds=1)
            observe(conn, person_id, "affiliate", almost, {"online": True}, now)
        await asyncio.sleep(0.2)  # the write's notification is behind us
        read = await cache.get("carol")
        assert read is not None and read.sources.online.stale is False
        before = _reads(pool)
        assert await cache.get("carol") == read
        assert _reads(pool) == before
        await asyncio.sleep(1.0)
        read = await cache.get("carol")
        assert read is not None and read.sources.online.stale is True
        assert _reads(pool) == before + 1

    _run(db_url, scenario)


def test_while_not_listening_every_read_goes_to_the_database(db_url: str) -> None:
    _person(db_url, "dave")

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        await cache.get("dave")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [APPLICATION_NAME],
            )
        await _until(lambda: _true(not cache.listening), "the lost connection went unnoticed")
        before = _reads(pool)
        await cache.get("dave")
        await cache.get("dave")
        assert _reads(pool) == before + 2
        # It listens again by itself, and then keeps entries again.
        await _until(lambda: _true(cache.listening), "the cache did not listen again", 10)
        await cache.get("dave")
        before = _reads(pool)
        await cache.get("dave")
        assert _reads(pool) == before

    _run(db_url, scenario)


def test_size_zero_turns_the_cache_off(db_url: str) -> None:
    _person(db_url, "erin")

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        before = _reads(pool)
        await cache.get("erin")
        await cache.get("erin")
        assert _reads(pool) == before + 2
        assert not cache.listening

    _run(db_url, scenario, size=0)


def test_the_least_recently_read_is_dropped_first(db_url: str) -> None:
    for name in ("f1", "f2", "f3"):
        _person(db_url, name)

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        await cache.get("f1")
        await cache.get("f2")
        await cache.get("f1")
        await cache.get("f3")  # drops f2, read longest ago
        before = _reads(pool)
        await cache.get("f1")
        await cache.get("f3")
        assert _reads(pool) == before
        await cache.get("f2")
        assert _reads(pool) == before + 1

    _run(db_url, scenario, size=2)


def test_one_accounts_follow_state_is_read_afresh_and_not_kept(db_url: str) -> None:
    """The entry kept is what any account knows; an account's state is read each time."""
    _person(db_url, "ann")
    at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with psycopg.connect(db_url) as conn:
        for account, names in (("alice", ["ann"]), ("carol", ["bob"])):
            reconcile(
                conn, "following", names, account=account, checked_at=at, source="followed_cams"
            )

    async def scenario(cache: PersonCache, pool: AsyncConnectionPool[Any]) -> None:
        anyone = await cache.get("ann")
        assert anyone is not None and anyone.following is True
        for account, following in (("carol", None), ("ALICE", True), ("carol", None)):
            before = _reads(pool)
            read = await cache.get("ann", account)
            assert read is not None and read.following is following, account
            assert _reads(pool) == before + 1, "an account's state came from the cache"
        before = _reads(pool)
        assert await cache.get("ann") == anyone
        assert _reads(pool) == before
        with pytest.raises(InvalidInput) as refused:
            await cache.get("ann", "zed")
        assert refused.value.field == "account"
        assert await cache.get("nobody", "zed") is None  # 404 before 400, as the route says

    _run(db_url, scenario)
