"""A crawl that yields a burst of Events API pages at once, for tests/crawler/test_pipelines.py.

``python -m tests.crawler.stream_crawl CONNINFO PAGES EVENTS_PER_PAGE [FAILING_PAGE]`` runs one
spider in this process (a Twisted reactor cannot restart, so not in the test's) with the real
storage pipeline and prints what the spider recorded as its failure. Page ``FAILING_PAGE`` (if
given) holds an event of May 2031, whose partition the test made impossible to create.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import AsyncIterator
from typing import Any

from scrapy.crawler import CrawlerProcess

from crawler.items import RoomEventsPage, register_struct_items
from roomwatch.config import load_config
from spiders.base import RoomwatchSpider
from tests.factories import room_event
from tests.support import as_url

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
BLOCKED = dt.datetime(2031, 5, 1, tzinfo=dt.UTC)


class BurstSpider(RoomwatchSpider):
    """Yields every page from ``start``: they all reach the pipeline at once."""

    name = "burst"

    def __init__(self, *args: Any, pages: int, size: int, failing: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages, self.size, self.failing = pages, size, failing

    async def start(self) -> AsyncIterator[Any]:
        n = 0
        for page in range(self.pages):
            events = []
            for _ in range(self.size):
                at = BLOCKED if page == self.failing else T0 + dt.timedelta(seconds=n)
                method = "follow" if n % 2 == 0 else "unfollow"
                events.append(room_event(method, at, f"fan{n % 7}", seq=n))
                n += 1
            yield RoomEventsPage("owner", events, events[-1].event_id)


def main() -> None:
    conninfo, pages, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    failing = int(sys.argv[4]) if len(sys.argv) > 4 else -1
    register_struct_items()
    process = CrawlerProcess(
        {
            "ROOMWATCH_CONFIG": load_config({"ROOMWATCH_DATABASE_URL": as_url(conninfo)}),
            "ROOMWATCH_CONNINFO": conninfo,
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
            "LOG_LEVEL": "ERROR",
            "LOG_INSTALL_ROOT_HANDLER": False,
            "TELNETCONSOLE_ENABLED": False,
            "EXTENSIONS": {"crawler.database.CrawlDatabase": 100},
            "ITEM_PIPELINES": {"crawler.pipelines.StoragePipeline": 500},
        }
    )
    crawler = process.create_crawler(BurstSpider)
    process.crawl(crawler, pages=pages, size=size, failing=failing)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, RoomwatchSpider)
    print(f"failure: {spider.failure}")


if __name__ == "__main__":
    main()
