"""The ``room_stats`` spider: one read of the owner's Stats API (FORMATS.md §6.2).

``stats.url`` (``ROOMWATCH_STATS_URL``) is the URL the site shows the broadcaster,
``https://chaturbate.com/statsapi/?username=<u>&token=<t>``; it is requested as it is. The
answer (follower count, viewers, token balance, votes, last broadcast, time online; ``-1`` read
as unknown) is stored as one ``room_stats`` row, and the follower count as the owner's
``stats_api`` observation (``storage/writers.py``). The site refreshes the figures every 5
minutes, and so does the default schedule. The count is what lets a followers crawl whose pages
show no count conclude (``spiders/followers.py``).

The URL holds the owner's token, a secret: the configuration registers both for the log
redaction, and nothing this spider records (its job error, its stats) quotes the URL. A job
error names the path at most (``/statsapi/: HTTP 401``). Without ``stats.url`` the job is
refused before it starts; the default schedule does not fire then (``roomwatch/catalog.py``
``SpiderInfo.requires``). 401 and 403 mean a wrong or revoked token and fail the job saying so;
429, 5xx and network errors are retried with the crawls' back-off (``crawler/middlewares.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.items import RoomStatsAnswer
from crawler.middlewares import describe_failure
from formats.stats import decode_stats
from roomwatch.config import Config
from roomwatch.errors import DecodeError, JobError
from spiders.base import RoomwatchSpider

if TYPE_CHECKING:
    import psycopg

NOT_SET = (
    "stats.url (ROOMWATCH_STATS_URL) is not set: the room_stats spider reads the owner's Stats "
    "API, at the URL the site shows on its statsapi token page (see docs/configuration.md)"
)
REFUSED = (
    "the Stats API refused the token (HTTP {status}): it is wrong or was revoked; create one "
    "at https://chaturbate.com/statsapi/authtoken/ and set stats.url again"
)


class RoomStatsSpider(RoomwatchSpider):
    """One request of the Stats API; its answer is one :class:`RoomStatsAnswer`."""

    name = "room_stats"
    reads_owner_url = True

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The account to read: ``account``, else the only one ``stats.url`` names.

        Raises:
            JobError: ``stats.url`` is not set (the message names it, never a URL), names no
                such account, or several and the job names none.
        """
        if not config.stats.url:
            raise JobError(NOT_SET)
        return {"account": config.stats.choose(args.get("account"), "stats.url")}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(
            self.config.stats.url,
            callback=self.parse_stats,
            errback=self.request_failed,
            # 401/403 reach the callback, which says what they mean; retries (429, 5xx) are
            # the back-off middleware's, before that.
            meta={"handle_httpstatus_list": [401, 403]},
            dont_filter=True,
        )

    def parse_stats(self, response: Response) -> Iterator[Any]:
        if response.status in (401, 403):
            self.fail(REFUSED.format(status=response.status))
            return
        try:
            row = decode_stats(response.body)
        except DecodeError as exc:
            self.fail(f"the Stats API's answer: {exc}")
            return
        self.crawler.stats.inc_value("roomwatch/pages")
        account = self.config.stats.account
        if row.username != account:
            self.fail(
                f"the Stats API answered for {row.username!r}, not for the account stats.url "
                f"names ({account!r})"
            )
            return
        self.logger.info(
            "job %s: the Stats API counts %s followers of %s",
            self.job_id,
            "unknown" if row.num_followers is None else row.num_followers,
            account,
        )
        yield RoomStatsAnswer(row, self.observed_at)

    def request_failed(self, failure: Failure) -> None:
        """A request that failed for good (after its retries): the path and why, never the
        query string (it holds the token)."""
        self.fail(f"the Stats API: {describe_failure(failure)}")
