"""The ``affiliate`` spider: one poll of the Affiliate API's online-rooms feed (FORMATS.md §1).

Pages with ``limit=500`` and ``offset``: the first page says how many rooms match (``count``),
the rest are then fetched concurrently, and more are asked for if ``count`` grows meanwhile.
One crawl is one observation time. Each page is decoded strictly (a wrong type fails that page,
naming the field) and stored as one batch; only a poll whose every page was read is complete,
and only a complete poll lets the database conclude that absent persons are offline.
Persons of interest due a new thumbnail (asked of the database in :meth:`prepare`) get a
:class:`~crawler.items.ThumbnailItem` for the images pipeline when their room is seen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import scrapy
from scrapy.exceptions import DownloadCancelledError
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from crawler.items import AffiliatePage, AffiliatePollComplete, ThumbnailItem
from formats.affiliate import decode_page
from roomwatch.config import Config
from roomwatch.errors import PageError
from spiders.base import RoomwatchSpider
from storage.targets import thumbnail_targets

if TYPE_CHECKING:
    import psycopg

PAGE_SIZE = 500


class AffiliateSpider(RoomwatchSpider):
    """One complete poll of the online-rooms feed."""

    name = "affiliate"

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """A larger download limit than the crawls' default (``crawler/settings.py``): a page
        of 500 rooms is about 0.6 MB, and long subjects and tags may grow it."""
        super().update_settings(settings)
        settings.set("DOWNLOAD_MAXSIZE", 16 * 1024 * 1024, priority="spider")
        settings.set("DOWNLOAD_WARNSIZE", 4 * 1024 * 1024, priority="spider")

    def __init__(self, *args: Any, thumbnails_due: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.thumbnails_due = set(thumbnails_due)
        self.requested: set[int] = set()
        self.pages_read = 0
        self.usernames: set[str] = set()
        self.capped_at: int | None = None  # the largest ``count`` beyond affiliate.max_rooms

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Who is due a thumbnail (``images.*``): the spider itself cannot ask the database."""
        settings = config.images
        due = (
            thumbnail_targets(conn, settings.persons, settings.min_interval_hours)
            if settings.enabled
            else []
        )
        return {"thumbnails_due": due}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not self.config.affiliate.wm:
            self.fail(
                "affiliate.wm (ROOMWATCH_AFFILIATE_WM) is not set: the Affiliate API "
                "needs your campaign slug"
            )
            return
        yield self._page(0)

    def _page(self, offset: int) -> scrapy.Request:
        self.requested.add(offset)
        settings = self.config.affiliate
        query: list[tuple[str, str | int]] = [
            ("wm", settings.wm),
            ("client_ip", settings.client_ip),
            ("format", "json"),
            ("limit", PAGE_SIZE),
            ("offset", offset),
        ]
        query += [("gender", g) for g in settings.gender]
        query += [("region", r) for r in settings.region]
        query += [("tag", t) for t in settings.tag]
        if settings.hd is not None:
            query.append(("hd", "true" if settings.hd else "false"))
        return scrapy.Request(
            f"{settings.url}?{urlencode(query)}",
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"offset": offset},
            dont_filter=True,
        )

    def parse_page(self, response: Response, offset: int) -> Iterator[Any]:
        try:
            rooms, count = decode_page(response.body)
        except PageError as exc:
            self.fail(f"page at offset {offset}: {exc}")
            return
        self.pages_read += 1
        self.crawler.stats.inc_value("roomwatch/pages")
        self.usernames.update(room.username for room in rooms)
        if rooms:
            yield AffiliatePage(rooms=rooms, observed_at=self.observed_at)
        for room in rooms:
            if room.image_url and room.username in self.thumbnails_due:
                self.thumbnails_due.discard(room.username)  # once per crawl, however often seen
                yield ThumbnailItem(room.username, room.image_url)
        if count is not None and rooms:
            for next_offset in range(offset + PAGE_SIZE, self._rooms_to_read(count), PAGE_SIZE):
                if next_offset not in self.requested:
                    yield self._page(next_offset)

    def _rooms_to_read(self, count: int) -> int:
        """``count``, capped at ``affiliate.max_rooms``: the feed's own figure decides how many
        pages are requested, so a broken or hostile one claiming 10**9 rooms must not make the
        crawl ask for two million pages. A capped poll is not complete (see :meth:`closed`)."""
        cap = self.config.affiliate.max_rooms
        if count <= cap:
            return count
        if self.capped_at is None:
            self.logger.warning(
                "the feed claims %d rooms, more than affiliate.max_rooms (%d): reading the "
                "first %d only; this poll will not conclude who is offline",
                count,
                cap,
                cap,
            )
        self.capped_at = max(count, self.capped_at or 0)
        self.crawler.stats.set_value("roomwatch/affiliate/claimed_count", self.capped_at)
        return cap

    def page_failed(self, failure: Failure) -> None:
        offset = failure.request.cb_kwargs.get("offset") if hasattr(failure, "request") else "?"
        self.fail(f"page at offset {offset}: {self._reason(failure)}")

    def _reason(self, failure: Failure) -> str:
        """The failure's message; Scrapy's for a body that outgrew ``DOWNLOAD_MAXSIZE`` while
        arriving is empty (the size is only in its log line), so it is said here."""
        if isinstance(failure.value, DownloadCancelledError) and not str(failure.value):
            limit = self.crawler.settings.getint("DOWNLOAD_MAXSIZE")
            return (
                f"download cancelled: the answer was larger than the download limit "
                f"({limit} bytes), or the crawl was stopping"
            )
        return failure.getErrorMessage()

    def closed(self, reason: str) -> None:
        """Declares the poll complete (the pipeline stores it only if nothing failed).

        A poll cut short at ``affiliate.max_rooms`` read every page it asked for but not every
        room the feed claims, so it concludes nothing: rooms beyond the cap were not seen.
        """
        every_page = bool(self.requested) and self.pages_read == len(self.requested)
        if self.capped_at is not None:
            self.logger.warning(
                "poll not complete: the feed claimed %d rooms and affiliate.max_rooms is %d",
                self.capped_at,
                self.config.affiliate.max_rooms,
            )
        elif reason == "finished" and self.failure is None and every_page:
            self.conclusion = AffiliatePollComplete(
                self.observed_at, len(self.usernames), sorted(self.usernames)
            )
