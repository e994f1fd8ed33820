"""The base of the logged-in crawls: the stored session, one browser page, the probe, retries.

A crawl takes the usable stored session (``prepare``, read with the crawl's own connection) and
hands its decrypted storage state to scrapy-playwright as the options of the crawl's only
browser context; cookie values never leave that dict (and are registered for redaction).

Scrapy makes one request, for the first page, and hands its browser page to :meth:`walk`,
which then clicks through the list in that same page as a person would (``page.goto`` of the
next page's link). One page rather than one Scrapy request per list page: a new page costs a
new renderer (about 0.15 s each), and scrapy-playwright re-routes a reused page per request
while the previous page's requests may still be in flight ("Route is already handled").

Every page is settled (the "Just a moment..." check waited out, the age-terms overlay closed)
and judged by the logged-in probe (``sessions.probe.classify_page``). The first judgement is
the probe that runs before the crawl proper: expired marks the session expired and fails the
job with "session expired: capture a new one", so nothing is concluded. A page the probe cannot
judge (HTTP 5xx, a check that never clears) or that cannot be read is loaded once more, then
fails the crawl. The context is closed when the crawl ends, however it ends; the crawl process
then closes the browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import scrapy
from playwright.async_api import BrowserContext, Page, StorageState
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Response as BrowserResponse
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.items import SessionChecked
from crawler.settings import USER_AGENT
from formats.site import AGE_GATE_CLOSE_SELECTOR, AGE_GATE_SELECTOR, INTERSTITIAL_TITLE
from roomwatch.errors import JobError
from sessions.pages import site_page, wait_out_interstitial
from sessions.probe import ProbeOutcome, ProbeResult, classify_page
from sessions.store import load_usable_session
from spiders.base import RoomwatchSpider

if TYPE_CHECKING:
    import psycopg

    from roomwatch.config import Config

CONTEXT_NAME = "logged_in"
PAGE_ATTEMPTS = 2
SETTLE_TIMEOUT = 30.0
EXPIRED = "session expired: capture a new one"
Read = TypeVar("Read")


class PageVisit(msgspec.Struct, frozen=True, kw_only=True):
    """A page as the crawl found it once it settled.

    Attributes:
        page: the browser page (the crawl's only one).
        html: its DOM then.
        status: HTTP status of the document shown.
        outcome: the logged-in probe's judgement of it.
    """

    page: Page
    html: str
    status: int
    outcome: ProbeOutcome


class PageProblem(msgspec.Struct, frozen=True):
    """Why a settled, logged-in page cannot be used; ``expired``: it shows a dead session."""

    reason: str
    expired: bool = False


class LoggedInSpider(RoomwatchSpider):
    """A crawl of logged-in pages in one browser page seeded with the stored session.

    Subclasses name their first page (``first_path``) and implement :meth:`walk`.

    Attributes:
        session_id: the stored session used (its status is updated from the probe).
        account: the account's name (from the session, corrected by the page header).
        storage_state: the decrypted session, used once to open the browser context.
        page: the crawl's browser page (None before the first response and after the end).
        captured: responses of the site's room-list API seen since the last navigation.
        confirm_loss: the user confirmed a loss past the mass-change guard's limits
            (``-a confirm_loss=true``; see ``storage/follow_guard.py``).
    """

    first_path: str
    session_id: int
    account: str
    storage_state: StorageState
    confirm_loss: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page: Page | None = None
        self.context: BrowserContext | None = None
        self.captured: list[BrowserResponse] = []
        self._document_status: int | None = None
        self._first_status: int | None = None
        self._judged = False

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Loads the session to crawl with (newest valid, else newest not known expired; of the
        ``account`` argument's account when given), and reads ``confirm_loss`` strictly (a typo
        must not confirm, nor silently not confirm).

        Raises:
            JobError: there is none, or ``confirm_loss`` is neither true nor false.
        """
        confirm = args.get("confirm_loss", False)
        if confirm in ("true", "false"):
            confirm = confirm == "true"
        if not isinstance(confirm, bool):
            raise JobError(f"confirm_loss: expected true or false, got {str(confirm)[:40]!r}")
        account = str(args["account"]).lower() if args.get("account") else None
        found = load_usable_session(conn, config, account)
        if found is None:
            whose = f" of {account}" if account else ""
            raise JobError(
                f"no usable login session{whose}: capture one with roomwatch login "
                "(the stored ones, if any, are expired)"
            )
        row, state = found
        return {
            "session_id": row.session_id,
            "account": row.account,
            "storage_state": state,
            "confirm_loss": confirm,
        }

    def site_url(self, path: str, page_no: int = 1) -> str:
        """``path`` on the configured site, with ``?page=N`` after the first page."""
        return site_page(self.config.chaturbate.url, path) + (
            f"?page={page_no}" if page_no > 1 else ""
        )

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield self._first_request()

    def _first_request(self, attempt: int = 1) -> scrapy.Request:
        meta: dict[str, Any] = {
            "playwright": True,
            "playwright_include_page": True,
            "playwright_context": CONTEXT_NAME,
            "playwright_context_kwargs": {
                "storage_state": self.storage_state,
                "user_agent": USER_AGENT,
                "service_workers": "block",
            },
            "playwright_page_init_callback": self._init_page,
            "handle_httpstatus_all": True,  # the probe judges statuses, not Scrapy
            "dont_retry": True,  # pages are retried here (PAGE_ATTEMPTS)
        }
        return scrapy.Request(
            self.site_url(self.first_path),
            callback=self.crawl_pages,
            errback=self.first_page_failed,
            cb_kwargs={"attempt": attempt},
            meta=meta,
            dont_filter=True,
        )

    async def _init_page(self, page: Page, request: scrapy.Request) -> None:
        self.page, self.context = page, page.context
        page.on("response", self._on_response)

    def _on_response(self, response: BrowserResponse) -> None:
        if "/api/ts/roomlist/room-list/" in response.url:
            self.captured.append(response)
        elif response.request.is_navigation_request() and response.frame.parent_frame is None:
            self._document_status = response.status

    async def crawl_pages(self, response: Response, attempt: int = 1) -> AsyncIterator[Any]:
        """The whole crawl, in the first request's browser page; the context closes after."""
        self.page = response.meta["playwright_page"]
        self._first_status = response.status
        try:
            async for produced in self.walk():
                yield produced
        finally:
            await self.release()

    def walk(self) -> AsyncIterator[Any]:
        """Reads the list page by page (with :meth:`fetch`), yielding items; sets the
        conclusion or fails the crawl at the end."""
        raise NotImplementedError

    async def first_page_failed(self, failure: Failure) -> AsyncIterator[scrapy.Request]:
        """The first navigation did not complete (timeout, network error): once more, then
        the crawl fails."""
        request: scrapy.Request = failure.request  # type: ignore[attr-defined]
        attempt = int(request.cb_kwargs.get("attempt", 1))
        message = (failure.getErrorMessage() or "navigation failed").strip().splitlines()[0]
        await self.release()
        if attempt < PAGE_ATTEMPTS:
            self.crawler.stats.inc_value("roomwatch/page_retries")
            yield self._first_request(attempt + 1)
        else:
            self.fail(f"cannot tell whether the session is logged in ({request.url}: {message})")

    async def fetch(
        self,
        url: str,
        what: str,
        read: Callable[[PageVisit], Awaitable[Read | PageProblem]],
        *,
        not_found_ok: bool = False,
    ) -> tuple[Read | None, list[Any]]:
        """Loads ``url`` in the crawl's page, judges it and reads it with ``read``.

        ``not_found_ok``: a logged-in HTTP 404 is read too (a page past the end of a list).

        Returns what ``read`` made of it (None when the crawl failed: the session expired or
        the page could not be used twice) and the items to yield (the session's status).
        """
        produced: list[Any] = []
        if not self.crawler.crawling:  # stopping (cancel, shutdown): no further page
            self.fail(f"stopped before {what}")
            return None, produced
        problem = ""
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            if attempt > 1:
                self.logger.warning("job %s: %s: %s; trying again", self.job_id, what, problem)
                self.crawler.stats.inc_value("roomwatch/page_retries")
            visit = await self._load(url)
            if isinstance(visit, PageProblem):
                problem = visit.reason
                continue
            outcome = visit.outcome
            if outcome.result is ProbeResult.EXPIRED:
                return None, [*produced, *self.expired(outcome.reason)]
            missing = not_found_ok and visit.status == 404
            if outcome.result is not ProbeResult.VALID or (visit.status >= 400 and not missing):
                problem = outcome.reason if visit.status < 400 else f"HTTP {visit.status}"
                continue
            produced += self._judged_valid(outcome)
            result = await read(visit)
            if not isinstance(result, PageProblem):
                self.crawler.stats.inc_value("roomwatch/pages")
                return result, produced
            if result.expired:
                return None, [*produced, *self.expired(result.reason)]
            problem = result.reason
        if not self._judged:
            what = f"cannot tell whether the session is logged in ({what})"
        self.fail(f"{what}: {problem}")
        return None, produced

    async def _load(self, url: str) -> PageVisit | PageProblem:
        page = self.page
        assert page is not None
        if self._first_status is not None:
            status, self._first_status = self._first_status, None  # loaded by Scrapy
        else:
            self.captured.clear()
            try:
                response = await page.goto(url, timeout=SETTLE_TIMEOUT * 1000)
            except PlaywrightError as exc:
                return PageProblem((exc.message or "navigation failed").strip().splitlines()[0])
            status = response.status if response is not None else 200
            # A browser response like any other: it shows in the job's page count.
            self.crawler.stats.inc_value("response_received_count")
        try:
            return await self._settle(page, status)
        except PlaywrightError as exc:
            return PageProblem((exc.message or "browser error").strip().splitlines()[0])

    async def _settle(self, page: Page, status: int) -> PageVisit:
        if INTERSTITIAL_TITLE in await page.title():
            if not await wait_out_interstitial(page, SETTLE_TIMEOUT):
                outcome = ProbeOutcome(
                    result=ProbeResult.UNKNOWN,
                    reason='the site\'s "Just a moment..." check did not clear',
                )
                return PageVisit(page=page, html="", status=403, outcome=outcome)
            await page.wait_for_load_state("load", timeout=SETTLE_TIMEOUT * 1000)
            status = self._document_status or status
        overlay = page.locator(AGE_GATE_SELECTOR).first
        if await overlay.count() and await overlay.is_visible():
            await page.locator(AGE_GATE_CLOSE_SELECTOR).first.click()
        html = await page.content()
        outcome = classify_page(final_url=page.url, status=status, html=html)
        return PageVisit(page=page, html=html, status=status, outcome=outcome)

    def _judged_valid(self, outcome: ProbeOutcome) -> list[Any]:
        if outcome.account:
            self.account = outcome.account
        if self._judged:
            return []
        self._judged = True
        self.logger.info("job %s: session #%d is logged in", self.job_id, self.session_id)
        return [SessionChecked(self.session_id, "valid")]

    def expired(self, reason: str) -> list[Any]:
        """Fails the crawl for an expired session; the item that marks the session expired."""
        self.fail(f"{EXPIRED} ({reason})")
        return [SessionChecked(self.session_id, "expired")]

    async def release(self) -> None:
        """Closes the crawl's browser context (and its page); the next crawl starts afresh."""
        self.page = None
        self.captured.clear()
        context, self.context = self.context, None
        if context is not None:
            with contextlib.suppress(PlaywrightError):
                await context.close()

    async def closed(self, reason: str) -> None:
        """However the crawl ended, its browser context does not outlive it."""
        await self.release()
