"""The crawl process's connection pool, a Scrapy extension the storage pipeline and the job
reporter share (``crawler.get_extension(CrawlDatabase)``): spiders never hold a connection.

It is made from the crawler's settings (``ROOMWATCH_CONFIG``, ``ROOMWATCH_CONNINFO``), opened
when the spider opens and closed when it closes. A component that needs a session of its own
(a lock held for the whole crawl, or statements that must never wait for a free pooled
connection) gets one from :meth:`CrawlDatabase.own_connection`. Components that still write
while the spider closes (the storage pipeline: its last batches and the conclusion) say so with
:meth:`CrawlDatabase.close_after`, and the pool waits for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool
from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThread

from roomwatch.config import DatabaseConfig
from storage.database import connect, make_pool

if TYPE_CHECKING:
    from psycopg import Connection


class CrawlDatabase:
    """The pool of one crawl (see the module docstring)."""

    def __init__(self, conninfo: str, settings: DatabaseConfig) -> None:
        self.pool: ConnectionPool = make_pool(conninfo, settings)
        self._conninfo = conninfo
        self._closing_after: list[Deferred[Any]] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlDatabase:
        database = cls(
            crawler.settings["ROOMWATCH_CONNINFO"], crawler.settings["ROOMWATCH_CONFIG"].database
        )
        crawler.signals.connect(database.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(database.spider_closed, signal=signals.spider_closed)
        return database

    @classmethod
    def of(cls, crawler: Any) -> CrawlDatabase:
        """The crawler's instance (the ``EXTENSIONS`` setting enables it for every crawl).

        Raises:
            RuntimeError: the crawl runs without it.
        """
        database: CrawlDatabase | None = crawler.get_extension(cls)
        if database is None:
            raise RuntimeError("the crawl runs without crawler.database.CrawlDatabase")
        return database

    def open(self) -> None:
        """Opens the pool, waiting for its first connections (blocking: call off the reactor)."""
        self.pool.open(wait=True)

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A connection of the pool, for one unit of work in a worker thread."""
        with self.pool.connection() as conn:
            yield conn

    def own_connection(self) -> Connection[Any]:
        """A new autocommit connection outside the pool (blocking: call off the reactor unless
        a few milliseconds' stall is meant); the caller closes it.

        Raises:
            DatabaseError: the database cannot be reached (the message never shows the URL).
        """
        return connect(self._conninfo, autocommit=True)

    def close_after(self, done: Deferred[Any]) -> None:
        """Keeps the pool open at the spider's close until ``done`` has fired."""
        self._closing_after.append(done)

    async def spider_opened(self, spider: Any) -> None:
        await maybe_deferred_to_future(deferToThread(self.open))

    async def spider_closed(self, spider: Any) -> None:
        await maybe_deferred_to_future(DeferredList(self._closing_after))
        await maybe_deferred_to_future(deferToThread(self.pool.close))
