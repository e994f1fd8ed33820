"""The storage pipeline: writes each storable item in a worker thread, then the conclusion."""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.database import crawler_pool
from crawler.items import Batchable, Storable
from roomwatch.errors import FollowLossHeld
from spiders.base import RoomwatchSpider
from storage.database import TRANSIENT_ERRORS
from storage.records import WriteResult

log = logging.getLogger(__name__)
# Writers of different crawls touch the same persons (and their summaries) in different orders;
# PostgreSQL then aborts one of two deadlocked transactions. Each store is one idempotent
# transaction, so running it again is safe.
ATTEMPTS = 3


class StoragePipeline:
    """Hands items to their storage writers off the reactor thread, one transaction each.

    A failed write fails the crawl (the job ends ``failed`` with the database's reason) but the
    other items are still written; the conclusion is stored only if nothing failed.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self._pending: dict[type[Any], Batchable] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> StoragePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, Batchable):
            # Many small pages cost one transaction each; merged, they cost one per batch.
            pending = self._pending.get(type(item))
            item = pending.merge(item) if pending is not None else item
            if item.rows < item.batch_rows:
                self._pending[type(item)] = item
                return item
            self._pending.pop(type(item), None)
        if isinstance(item, Storable):
            await self._store(item, self.crawler.spider)
        return item

    async def spider_closed(self, spider: RoomwatchSpider, reason: str) -> None:
        """Stores what is still batched, then the conclusion, but only after a crawl that ran
        to its end without a failure."""
        for item in list(self._pending.values()):
            await self._store(item, spider)
        self._pending.clear()
        if spider.conclusion is not None and spider.failure is None and reason == "finished":
            await self._store(spider.conclusion, spider)

    async def _store(self, item: Storable, spider: RoomwatchSpider) -> None:
        try:
            rows = await maybe_deferred_to_future(deferToThread(self._write, item, spider.job_id))
        except FollowLossHeld as exc:  # the guard's own words: why, and how to confirm
            spider.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 (any database error fails the crawl, with its reason)
            spider.fail(f"storing {item.kind} failed: {str(exc).strip().splitlines()[0]}")
            return
        if isinstance(rows, WriteResult):
            # Rows the database refused were set aside (each logged with its username by the
            # writer) and the rest stored: counted, they do not fail the crawl, whose other
            # rows and conclusion stay true (see storage/guards.py, conclude_affiliate_poll).
            if rows.set_aside:
                self.crawler.stats.inc_value("roomwatch/rows_set_aside", len(rows.set_aside))
            rows = rows.inserted
        self.crawler.stats.inc_value(f"items/{item.kind}", rows)

    def _write(self, item: Storable, job_id: int | None) -> int | WriteResult:
        started = time.perf_counter()
        try:
            for _ in range(ATTEMPTS - 1):
                try:
                    return self._store_once(item, job_id)
                except TRANSIENT_ERRORS as exc:
                    log.info("storing %s: %s; trying again", item.kind, type(exc).__name__)
                    self.crawler.stats.inc_value("roomwatch/store_retries")
            return self._store_once(item, job_id)  # the last attempt's error fails the crawl
        finally:
            # Time spent storing, summed over items (writes overlap with downloads).
            self.crawler.stats.inc_value("roomwatch/store_seconds", time.perf_counter() - started)

    def _store_once(self, item: Storable, job_id: int | None) -> int | WriteResult:
        with crawler_pool(self.crawler).connection() as conn:
            return item.store(conn, job_id)
