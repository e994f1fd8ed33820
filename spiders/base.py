"""The base every roomwatch spider shares: its config, its job, one observation time, failure."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec
import scrapy

from roomwatch.config import Config

if TYPE_CHECKING:
    import psycopg


class RoomwatchSpider(scrapy.Spider):
    """A spider run as a recorded crawl job.

    Attributes:
        config: the process's configuration (read once by the crawl process).
        job_id: the ``crawl_jobs`` row this crawl reports to (None in parser-only tests).
        observed_at: one crawl is one observation time (UTC), fixed at start.
        failure: the first reason this crawl cannot succeed; the job ends ``failed`` with it.
        conclusion: an item (``crawler/items.py``) the storage pipeline stores once at the end,
            only if the crawl did not fail (for example: "this poll was complete, so everyone
            absent is offline").
    """

    config: Config
    job_id: int | None
    reads_owner_url = False
    """A stream of one account's Events or Stats URL: ``prepare`` names the ``account``."""
    failure: str | None = None
    conclusion: msgspec.Struct | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.observed_at = dt.datetime.now(dt.UTC)

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Reads what the crawl needs from the database before it starts; none by default.

        The crawl process calls this once, with a connection of its own, and passes the result
        to the spider as keyword arguments (over the job's own ``args``): spiders themselves
        never open a connection, yet some need inputs such as the usernames to ask about.

        Args:
            conn: a connection for reads (the crawl process closes it afterwards).
            config: the process's configuration.
            args: the job's spider arguments (``-a key=value``), all strings.

        Raises:
            JobError: the arguments cannot be honoured (the job fails before starting).
        """
        return {}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RoomwatchSpider:
        spider: RoomwatchSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = crawler.settings["ROOMWATCH_CONFIG"]
        if cls.reads_owner_url:
            # A stream of one account sees that account's Events and Stats URLs only.
            spider.config = spider.config.for_account(str(getattr(spider, "account", "")))
        spider.job_id = crawler.settings.getint("ROOMWATCH_JOB_ID") or None
        return spider

    def fail(self, reason: str) -> None:
        """Records why the crawl cannot succeed; the first reason wins, the crawl goes on."""
        self.logger.error("crawl failing: %s", reason)
        if self.failure is None:
            self.failure = reason
        self.crawler.stats.inc_value("roomwatch/failures")
