"""Reports a crawl's progress to its job row once a second, so ``roomwatch crawl`` and the API
can show pages and items while it runs, and the runner sees it is alive."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from twisted.internet import task
from twisted.internet.threads import deferToThread

from spiders.database import close_crawler_pool, crawler_pool
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

    @classmethod
    def from_crawler(cls, crawler: Any) -> JobProgress:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        return extension

    def spider_opened(self, spider: Any) -> None:
        if self.job_id:
            self._loop = task.LoopingCall(self._report)
            self._loop.start(INTERVAL_SECONDS, now=False)

    def spider_closed(self, spider: Any) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def engine_stopped(self) -> None:
        close_crawler_pool(self.crawler)

    def _report(self) -> Any:
        stats = json_stats(self.crawler.stats.get_stats())

        def write() -> None:
            with crawler_pool(self.crawler).connection() as conn:
                record_progress(conn, self.job_id, stats)

        return deferToThread(write).addErrback(
            lambda failure: log.warning("progress not recorded: %s", failure.getErrorMessage())
        )
