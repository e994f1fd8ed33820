"""The storage pipeline: writes each storable item in a worker thread, then the conclusion."""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from spiders.base import RoomwatchSpider
from spiders.database import crawler_pool
from spiders.items import Storable


class StoragePipeline:
    """Hands items to their storage writers off the reactor thread, one transaction each.

    A failed write fails the crawl (the job ends ``failed`` with the database's reason) but the
    other items are still written; the conclusion is stored only if nothing failed.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> StoragePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, Storable):
            spider: RoomwatchSpider = self.crawler.spider
            await self._store(item, spider)
        return item

    async def spider_closed(self, spider: RoomwatchSpider, reason: str) -> None:
        """Stores the conclusion only after a crawl that ran to its end without a failure."""
        if spider.conclusion is not None and spider.failure is None and reason == "finished":
            await self._store(spider.conclusion, spider)

    async def _store(self, item: Storable, spider: RoomwatchSpider) -> None:
        try:
            rows = await maybe_deferred_to_future(deferToThread(self._write, item, spider.job_id))
        except Exception as exc:  # noqa: BLE001 (any database error fails the crawl, with its reason)
            spider.fail(f"storing {item.kind} failed: {str(exc).strip().splitlines()[0]}")
        else:
            self.crawler.stats.inc_value(f"items/{item.kind}", rows)

    def _write(self, item: Storable, job_id: int | None) -> int:
        with crawler_pool(self.crawler).connection() as conn:
            return item.store(conn, job_id)
