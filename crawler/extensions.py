"""Crawl extensions: progress reported to the job row once a second (so ``roomwatch crawl`` and
the API can show pages and items while it runs, and the runner sees it is alive), and every
spider or item error turned into the job's failure."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from twisted.internet import task
from twisted.internet.threads import deferToThread

from crawler.database import CrawlDatabase
from roomwatch.logs import redact
from spiders.base import RoomwatchSpider
from storage.jobs import record_progress

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 1.0


def json_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Scrapy's stats with values JSON can hold (datetimes become ISO strings)."""
    return {
        key: value if isinstance(value, int | float | str | bool) or value is None else str(value)
        for key, value in stats.items()
    }


class JobProgress:
    """Writes the crawler's stats to ``crawl_jobs`` every second while the crawl runs."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.job_id: int = crawler.settings.getint("ROOMWATCH_JOB_ID")
        self._loop: task.LoopingCall | None = None
        self._database: CrawlDatabase | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> JobProgress:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Any) -> None:
        if self.job_id:
            self._database = CrawlDatabase.of(self.crawler)
            self._loop = task.LoopingCall(self._report)
            self._loop.start(INTERVAL_SECONDS, now=False)

    def spider_closed(self, spider: Any) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _report(self) -> Any:
        stats = json_stats(self.crawler.stats.get_stats())
        database = self._database
        assert database is not None  # set when the loop started

        def write() -> None:
            with database.connection() as conn:
                record_progress(conn, self.job_id, stats)

        return deferToThread(write).addErrback(
            lambda failure: log.warning("progress not recorded: %s", failure.getErrorMessage())
        )


class SpiderErrors:
    """Fails the crawl on any error Scrapy itself only logs.

    An exception escaping a callback, ``start()`` or an item pipeline is logged by Scrapy and
    the crawl goes on to finish normally: the job used to end ``succeeded`` (an impossible date
    in a CBHours answer did exactly that) and the conclusion was stored. Each such error now
    fails the crawl with its reason, as :meth:`RoomwatchSpider.fail` does for known failures.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> SpiderErrors:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_error, signal=signals.spider_error)
        crawler.signals.connect(extension.item_error, signal=signals.item_error)
        return extension

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        self._fail(spider, "spider error", failure, response)

    def item_error(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        self._fail(spider, f"item error ({type(item).__name__})", failure, response)

    def _fail(self, spider: Any, what: str, failure: Any, response: Any) -> None:
        if not isinstance(spider, RoomwatchSpider):
            return
        where = ""
        if response is not None:
            # The request's own name (``get_live batch 2``), else its path: the query string
            # may hold a token.
            meta = getattr(response, "meta", {}) if getattr(response, "request", None) else {}
            where = f" in {meta.get('what') or response.url.split('?', 1)[0]}"
        message = (failure.getErrorMessage() or "").strip().splitlines()
        reason = f"{failure.type.__name__}{': ' + message[0] if message else ''}"
        spider.fail(redact(f"{what}{where}: {reason}"))
