"""The ``followed_cams`` spider: the logged-in followed-cams lists, online then offline.

It pages through ``/followed-cams/`` and ``/followed-cams/offline/`` (``?page=N``) in the
logged-in browser and reads each page's rooms from the room-list JSON the page itself fetches
(``/api/ts/roomlist/room-list/?follow=true&offline=...``, caught as the browser receives it),
falling back to the rendered cards when no such call shows up before the page goes quiet. Only
rows the site marks ``is_following`` count; an answer with none (the anonymous public list) means
the session expired under the crawl. The JSON's ``total_count`` says how many pages a list has.

Every page read is stored as observations (source ``followed_cams``). Follow state changes only
after a provably complete crawl: every page of both lists read, and the rooms read matching the
total of the header's "(online/total)" within ``followed_cams.count_tolerance`` (so an empty
list needs the header's explicit total of 0). Otherwise the job fails saying why, and follow
state is left as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from parsel import Selector
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import Response as BrowserResponse

from crawler.items import CompleteList, FollowedRooms
from formats.followed_cams import (
    decode_room_list,
    parse_counts,
    parse_followed_page,
)
from roomwatch.errors import RoomListError
from spiders.logged_in import SETTLE_TIMEOUT, LoggedInSpider, PageProblem, PageVisit
from storage.records import RoomObservation

PATHS = {"online": "/followed-cams/", "offline": "/followed-cams/offline/"}
_POLL_SECONDS = 0.02


class RoomsRead(msgspec.Struct, frozen=True, kw_only=True):
    """What one page yielded.

    Attributes:
        rows: the followed rooms on it.
        last_page: the list's last page, as far as this page tells.
        via: ``json`` (the page's room-list call) or ``dom`` (the rendered cards).
        anonymous: the call answered with the public list (session expired).
        error: why the page cannot be used, if it cannot.
    """

    rows: list[RoomObservation] = msgspec.field(default_factory=list)
    last_page: int = 1
    via: str = "json"
    anonymous: bool = False
    error: str | None = None


def _list_call(url: str, offline: bool, page_no: int) -> bool:
    """Whether a room-list call is the one page ``page_no`` of that list makes."""
    query = parse_qs(urlsplit(url).query)
    limit = int((query.get("limit") or ["90"])[0] or 90)
    offset = int((query.get("offset") or ["0"])[0] or 0)
    return (
        (query.get("follow") or [""])[0] == "true"
        and ((query.get("offline") or ["false"])[0] == "true") == offline
        and offset == (page_no - 1) * limit
    )


class FollowedCamsSpider(LoggedInSpider):
    """One crawl of both followed lists (see the module docstring)."""

    name = "followed_cams"
    first_path = PATHS["online"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, set[str]] = {"online": set(), "offline": set()}
        self.counts: tuple[int, int] | None = None

    async def walk(self) -> AsyncIterator[Any]:
        """The online list, then the offline one, each page after page; then the verdict."""
        for list_name in ("online", "offline"):
            page_no, last = 1, 1
            while page_no <= last:
                url = self.site_url(PATHS[list_name], page_no)
                what = f"page {page_no} of the {list_name} list"
                read, produced = await self.fetch(
                    url, what, partial(self._read_page, list_name=list_name, page_no=page_no)
                )
                for thing in produced:
                    yield thing
                if read is None:
                    return
                self.seen[list_name].update(row.username for row in read.rows)
                self.crawler.stats.inc_value(f"roomwatch/pages_read_from_{read.via}")
                if read.rows:
                    yield FollowedRooms(read.rows, "followed_cams", self.observed_at)
                page_no, last = page_no + 1, read.last_page
        self._conclude()

    async def _read_page(
        self, visit: PageVisit, *, list_name: str, page_no: int
    ) -> RoomsRead | PageProblem:
        self.counts = parse_counts(Selector(text=visit.html)) or self.counts
        read = await self._read_rooms(visit.page, list_name, page_no)
        if read.anonymous:
            return PageProblem("the room list came back as the anonymous list", expired=True)
        if read.error is not None:
            return PageProblem(read.error)
        if not read.rows and (page_no > 1 or read.last_page > 1):
            return PageProblem("the page showed no rooms")
        return read

    async def _read_rooms(self, page: Page, list_name: str, page_no: int) -> RoomsRead:
        offline = list_name == "offline"
        try:
            call = await self._wait_for_call(page, lambda url: _list_call(url, offline, page_no))
            if call is None:
                dom = parse_followed_page(await page.content(), offline=offline)
                return RoomsRead(rows=dom.rows, last_page=dom.last_page, via="dom")
            if call.status != 200:
                return RoomsRead(error=f"its room-list call answered HTTP {call.status}")
            listing = decode_room_list(await call.body(), offline=offline)
        except RoomListError as exc:
            return RoomsRead(error=f"its room-list answer: {exc}")
        except PlaywrightError as exc:
            return RoomsRead(error=(exc.message or "browser error").strip().splitlines()[0])
        limit = int((parse_qs(urlsplit(call.url).query).get("limit") or ["90"])[0])
        last = max(1, math.ceil(listing.total_count / max(1, limit)))
        return RoomsRead(rows=listing.rows, last_page=last, anonymous=listing.anonymous)

    async def _wait_for_call(
        self, page: Page, matches: Callable[[str], bool]
    ) -> BrowserResponse | None:
        """The page's room-list call once it answered, or None once the page went quiet."""
        quiet = asyncio.ensure_future(
            page.wait_for_load_state("networkidle", timeout=SETTLE_TIMEOUT * 1000)
        )
        try:
            while True:
                done = quiet.done()
                for call in self.captured:
                    if matches(call.url):
                        return call
                if done:
                    return None
                await asyncio.sleep(_POLL_SECONDS)
        finally:
            quiet.cancel()
            with contextlib.suppress(asyncio.CancelledError, PlaywrightError):
                await quiet

    def _conclude(self) -> None:
        """Both lists were read: complete if the count matches the header's total."""
        if self.failure is not None:
            return
        names = self.seen["online"] | self.seen["offline"]
        stats = self.crawler.stats
        stats.set_value("roomwatch/followed_read", len(names))
        tolerance = self.config.followed_cams.count_tolerance
        if self.counts is None:
            self.fail(
                "incomplete: the pages show no (online/total) header count to check the lists "
                "against; follow state unchanged"
            )
            return
        online, total = self.counts
        stats.set_value("roomwatch/followed_header_total", total)
        if abs(len(names) - total) > tolerance:
            self.fail(
                f"incomplete: read {len(names)} followed rooms but the site's header counts "
                f"{total} (tolerance {tolerance}); follow state unchanged"
            )
            return
        if abs(len(self.seen["online"]) - online) > tolerance:
            # Rooms go live and off while the lists are read; the total is what decides.
            self.logger.info(
                "job %s: %d online rooms read, the header said %d",
                self.job_id,
                len(self.seen["online"]),
                online,
            )
        self.logger.info("job %s: both lists complete, %d followed rooms", self.job_id, total)
        self.conclusion = CompleteList(
            "following",
            sorted(names),
            "followed_cams",
            self.observed_at,
            self.config.follow,
            self.confirm_loss,
            account=self.account,
        )
