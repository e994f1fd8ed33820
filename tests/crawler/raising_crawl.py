"""A crawl whose callback or item pipeline raises, for tests/spiders/test_extensions.py.

``python -m tests.crawler.raising_crawl URL callback|item|start`` runs one spider in this
process (a Twisted reactor cannot restart, so not in the test's) with roomwatch's
``SpiderErrors`` extension and prints what the spider recorded as its failure.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response

from crawler.items import register_struct_items
from spiders.base import RoomwatchSpider


class RaisingSpider(RoomwatchSpider):
    """Fetches one page; then fails where ``mode`` says, the way an unforeseen bug would."""

    name = "raising"

    def __init__(self, *args: Any, url: str = "", mode: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url, self.mode = url, mode

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.mode == "start":
            raise OverflowError("date value out of range")
        yield scrapy.Request(self.url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if self.mode == "callback":
            raise ValueError("day is out of range for month")
        yield {"seen": response.url}


class RaisingPipeline:
    """An item pipeline with a bug."""

    def process_item(self, item: Any) -> Any:
        raise KeyError("num_users")


def main() -> None:
    url, mode = sys.argv[1:3]
    register_struct_items()
    process = CrawlerProcess(
        {
            "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
            "LOG_LEVEL": "ERROR",
            "LOG_INSTALL_ROOT_HANDLER": False,
            "TELNETCONSOLE_ENABLED": False,
            "EXTENSIONS": {"crawler.extensions.SpiderErrors": 510},
            "ITEM_PIPELINES": {"tests.crawler.raising_crawl.RaisingPipeline": 500},
        }
    )
    crawler = process.create_crawler(RaisingSpider)
    process.crawl(crawler, url=url, mode=mode)
    process.start()
    spider = crawler.spider
    assert isinstance(spider, RoomwatchSpider)
    print(f"failure: {spider.failure}")


if __name__ == "__main__":
    main()
