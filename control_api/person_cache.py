"""Merged persons, kept in the API process until the database says they may have changed.

Reading one person through ``v_person_current_state`` costs a pool connection and a merge; the
same person asked for again gets the same answer until either

* a write touches persons, ``person_source_latest`` or the "recent" setting: the triggers of
  migration 0007 then ``NOTIFY roomwatch_persons`` on commit, and this cache forgets everything;
* or time alone moves the merge: one of the person's recent observations leaves the window
  (a winner or a staleness flag changes). Each entry expires then (``PersonRead.valid_for``).

Entries are only kept while this process is listening: if the listening connection is lost,
the cache forgets everything and answers from the database until it listens again. A read that
overlaps a notification is not kept (its answer may predate the write), so no stale merge
survives a write. Bounded, least recently used first out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from roomwatch.errors import DatabaseError
from storage.accounts import resolve_account_async
from storage.database import connect_async, listen_async
from storage.person_queries import PersonDetail, for_account, get_person

log = logging.getLogger(__name__)
CHANNEL = "roomwatch_persons"
RETRY_SECONDS = 2.0
APPLICATION_NAME = "roomwatch person cache"


class PersonCache:
    """Reads merged persons through a cache invalidated by the database.

    Args:
        pool: where misses are read.
        conninfo: for the connection that listens (held outside the pool).
        size: most persons kept; 0 turns the cache off (every read goes to the database).
    """

    def __init__(self, pool: AsyncConnectionPool[Any], conninfo: str, size: int) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._size = size
        self._entries: OrderedDict[str, tuple[float, PersonDetail]] = OrderedDict()
        self._epoch = 0  # moves on every notification and whenever listening starts or stops
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """True while notifications arrive, so that entries may be kept."""
        return self._listening

    async def start(self) -> None:
        """Starts listening (in the background; reads work meanwhile, uncached)."""
        if self._size > 0:
            self._task = asyncio.create_task(self._listen(), name="person-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def get(self, username: str, account: str | None = None) -> PersonDetail | None:
        """The merged person, or None when nobody has that username (any case).

        With ``account``, the follow state (and its durations) is that account's, read afresh
        each time; the entry kept holds what any account knows. Read here, not by a second
        dependency of the route: Litestar resolves two dependencies of one level in a task group
        (litestar#4563), which cost the cached read about 40 % of its speed.

        Raises:
            InvalidInput: ``account`` is not an account here (a 400 naming the choices).
        """
        person = await self._merged(username)
        if person is None or account is None:
            return person
        async with self._pool.connection() as conn:
            choice = await resolve_account_async(conn, account)
            return await for_account(conn, person, choice.account)

    async def _merged(self, username: str) -> PersonDetail | None:
        key = username.lower()
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None:
            if entry[0] > now:
                self._entries.move_to_end(key)
                return entry[1]
            del self._entries[key]
        epoch = self._epoch
        async with self._pool.connection() as conn:
            read = await get_person(conn, username)
        if read is None:
            return None
        # Kept only if no write was announced while reading (and we were listening throughout).
        if self._listening and epoch == self._epoch:
            expires = now + read.valid_for if read.valid_for is not None else float("inf")
            self._entries[key] = (expires, read.person)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return read.person

    def forget(self) -> None:
        """Drops every entry; a read under way is not kept. For writers in this process, so
        that their caller reads its own write without waiting for the notification."""
        self._epoch += 1
        self._entries.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async with await connect_async(
                    self._conninfo, autocommit=True, application_name=APPLICATION_NAME
                ) as conn:
                    await listen_async(conn, CHANNEL)
                    self.forget()  # whatever changed before LISTEN is not in the cache
                    self._listening = True
                    async for _ in conn.notifies():
                        self.forget()
            except (psycopg.Error, DatabaseError) as exc:
                log.warning("person cache: not listening (%s); reading uncached", exc)
            finally:
                self._listening = False
                self.forget()
            await asyncio.sleep(RETRY_SECONDS)
