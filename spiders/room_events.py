"""The ``room_events`` spider: the owner's Events API stream (FORMATS.md §6.1), source
``events_api``, as a long-running crawl that a "keep running" schedule starts again.

**Position.** The stream starts right after the last stored event (``prepare`` reads it from
``room_event_streams``) and then follows each answer's ``nextUrl``. Every answer with events is
one :class:`~crawler.items.RoomEventsPage`, stored with the new position in one transaction, so
a restart, a crash (even ``kill -9``) or a database outage never loses or repeats an event.
The next answer is fetched while the previous one is stored: the storage pipeline writes the
pages of a stream in order (joining those that wait into one write) and none after a failed
one, and the spider asks for no more once the crawl is failing.

**The token.** The URL holds it; it is only ever sent to the configured URL: a ``nextUrl`` on
another scheme, host, port or path is refused (the job fails), redirects are not followed, and
no log line or job error names a URL (they say "the Events API").

**Politeness.** At most ``events.max_requests_per_minute`` requests in any 60 seconds. A 429,
a 5xx (the CDN's 520/521 too), a 408 or a network error waits ``backoff.*`` (``Retry-After``
honoured) and asks the same URL again, for as long as it takes; the job fails only when the API
has not answered for :data:`OUTAGE_SECONDS` in a row, so an hour of a flaky API is not a
failure, and a long outage is one (and its alert). A 401/403 fails at once with
:data:`~roomwatch.errors.TOKEN_REFUSED` in the reason (a new token is needed: retrying will not
help), a 404 names the account.

**How long.** It ends itself, ``succeeded``, after ``runs_for`` seconds (``roomwatch/catalog.py``,
an hour; ``-a run_seconds=N`` for fewer), or at its first empty answer with ``-a
until_idle=true``; the download timeout is the server's hold plus a margin, so a quiet stream
never times out.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object
from twisted.python.failure import Failure

from crawler.items import RoomEventsPage
from crawler.middlewares import backoff_seconds, is_retryable, pause, retry_after_seconds
from formats.events import decode_events
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config
from roomwatch.errors import TOKEN_REFUSED, JobError, RoomwatchError
from roomwatch.logs import redact
from spiders.base import RoomwatchSpider
from storage.targets import stream_position

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
WHAT = "the Events API"
OUTAGE_SECONDS = 600.0
"""The job fails once the API has not answered (2xx) for this long in a row."""
HOLD_MARGIN_SECONDS = 30.0
"""The download timeout is the server's hold (``timeout``) plus this."""
RATE_WINDOW_SECONDS = 60.0
TOKEN_PAGE = "https://chaturbate.com/statsapi/authtoken/"  # noqa: S105 (where tokens are made)
NOT_SET = (
    "events.url (ROOMWATCH_EVENTS_URL) is not set: the room_events stream needs the owner's "
    f"Events API URL with its token (create one at {TOKEN_PAGE}, scope Events API)"
)


class RoomEventsSpider(RoomwatchSpider):
    """The owner's Events API long poll, followed from answer to answer."""

    name = "room_events"
    reads_owner_url = True

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """A larger download limit than the crawls' default: how many events one answer may
        hold is the API's choice (a burst after a long gap could be big), and an answer too
        large to read would stop the stream at that place for good."""
        super().update_settings(settings)
        settings.set("DOWNLOAD_MAXSIZE", 64 * 1024 * 1024, priority="spider")
        settings.set("DOWNLOAD_WARNSIZE", 8 * 1024 * 1024, priority="spider")

    def __init__(
        self,
        *args: Any,
        position: str | None = None,
        until_idle: str = "false",
        run_seconds: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.position = position
        self.until_idle = until_idle == "true"
        default = SPIDERS[self.name].runs_for
        assert default is not None
        self.run_seconds = float(run_seconds) if run_seconds else float(default)
        self.started = time.monotonic()
        self._sent: deque[float] = deque()  # when the requests of the last minute left
        self._trouble_since: float | None = None  # first failed attempt since the last answer
        self._failures = 0  # failed attempts since the last answer

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The account's stream (``account``, else the only one ``events.url`` names) and its
        stored position (None: never read).

        Raises:
            JobError: ``events.url`` is not set, or names no such account, or several and the
                job names none.
        """
        if not config.events.url:
            raise JobError(NOT_SET)
        account = config.events.choose(args.get("account"), "events.url")
        return {"account": account, "position": stream_position(conn, account)}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        settings = self.config.events
        if not settings.url:
            self.fail(NOT_SET)
            return
        self.logger.info(
            "streaming the Events API of %s from %s",
            settings.account,
            f"after event {self.position}" if self.position else "its start",
        )
        query = {"timeout": str(settings.timeout_seconds)}
        if self.position:
            query = {"i": self.position, **query}
        parts = urlsplit(settings.url)
        url = urlunsplit(parts._replace(query=urlencode(query)))
        if (request := await self._paced(url)) is not None:
            yield request

    def _request(self, url: str) -> scrapy.Request:
        hold = _query_number(url, "timeout", float(self.config.events.timeout_seconds))
        return scrapy.Request(
            url,
            callback=self.parse_answer,
            errback=self.request_failed,
            dont_filter=True,
            meta={
                "what": WHAT,  # named so in errors instead of the URL (it holds the token)
                "dont_retry": True,  # this spider backs off itself, and never gives up early
                "dont_redirect": True,  # the token goes to the configured URL only
                "handle_httpstatus_all": True,
                "download_timeout": min(hold, 90.0) + HOLD_MARGIN_SECONDS,
            },
        )

    async def parse_answer(self, response: Response) -> AsyncIterator[Any]:
        status = response.status
        if status != 200:
            async for request in self._refused(response):
                yield request
            return
        try:
            events, next_url = decode_events(
                response.body, store_message_text=self.config.events.store_message_text
            )
        except RoomwatchError as exc:
            self.fail(f"{WHAT} answered something unreadable: {redact(str(exc))}")
            return
        self._trouble_since, self._failures = None, 0
        self.crawler.stats.inc_value("roomwatch/events/answers")
        if not self._follows_configured_url(next_url):
            host = urlsplit(next_url).hostname
            self.fail(
                f"{WHAT}'s nextUrl points elsewhere (host {host!r}, or another path or scheme):"
                " refused, the token is only sent to events.url"
            )
            return
        if self.failure is not None:
            return  # a page was not stored: none after it may be (the position would pass it)
        if events:
            position = _query_text(next_url, "i") or events[-1].event_id
            self.crawler.stats.inc_value("roomwatch/events/received", len(events))
            yield RoomEventsPage(self.config.events.account, events, position)
        if self._should_end(bool(events)):
            return
        if (follow := await self._paced(next_url)) is not None:
            yield follow

    async def _refused(self, response: Response) -> AsyncIterator[scrapy.Request]:
        """An answer other than 200: fail for good, or back off and ask again."""
        status = response.status
        account = self.config.events.account
        if status in (401, 403):
            self.fail(
                f"{WHAT} {TOKEN_REFUSED} (HTTP {status}): create a new one at {TOKEN_PAGE} "
                "(scope Events API) and set events.url (ROOMWATCH_EVENTS_URL) to the URL the "
                "site shows"
            )
        elif status == 404:
            self.fail(f"{WHAT} does not know the account {account!r} (HTTP 404): check events.url")
        elif is_retryable(status) or status in (520, 521):
            retry_after = retry_after_seconds(response.headers.get(b"Retry-After"))
            kind = "429" if status == 429 else "5xx" if status >= 500 else "other"
            if await self._back_off(f"HTTP {status}", kind, retry_after):
                url = response.request.url if response.request else response.url
                if (request := await self._paced(url)) is not None:
                    yield request
        else:
            self.fail(f"{WHAT} answered HTTP {status}")

    async def request_failed(self, failure: Failure) -> AsyncIterator[scrapy.Request]:
        """A network error (refused, reset, timed out): back off and ask again."""
        request: scrapy.Request | None = getattr(failure, "request", None)
        what = _describe(failure)
        if request is None or not isinstance(failure.value, self._retryable_errors()):
            self.fail(f"{WHAT}: {what}")
            return
        if not await self._back_off(what, "exception", None):
            return
        if (again := await self._paced(request.url)) is not None:
            yield again

    def _retryable_errors(self) -> tuple[type[BaseException], ...]:
        names = self.crawler.settings.getlist("RETRY_EXCEPTIONS")
        return tuple(load_object(n) if isinstance(n, str) else n for n in names)

    async def _back_off(self, what: str, kind: str, retry_after: float | None) -> bool:
        """Waits before the same request goes again; False (job failed) after a long outage."""
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = now
        down = now - self._trouble_since
        if down > OUTAGE_SECONDS:
            self.fail(f"{WHAT} has not answered for {down:.0f} s (last: {what})")
            return False
        seconds = backoff_seconds(self.config.backoff, self._failures, retry_after)
        self._failures += 1
        stats: Any = self.crawler.stats  # sums of seconds are floats
        stats.inc_value(f"backoff/{kind}")
        stats.inc_value("backoff/wait_seconds", seconds)
        stats.inc_value("retry/count")
        self.logger.warning("%s: %s; asking again in %.1f s", WHAT, what, seconds)
        await pause(seconds)
        return not self._should_end(True)

    def _should_end(self, had_events: bool) -> bool:
        """True once the run is over: its time is up, it failed, it is being stopped (cancel,
        shutdown), or it caught up (until_idle)."""
        if self.failure is not None:
            return True
        if self.crawler.engine is None or not self.crawler.engine.running:
            return True
        if self.until_idle and not had_events:
            self.logger.info("caught up with the stream (until_idle): ending")
            return True
        if time.monotonic() - self.started >= self.run_seconds:
            self.logger.info(
                "ran for %.0f s: ending (the schedule starts it again)", self.run_seconds
            )
            return True
        return False

    async def _paced(self, url: str) -> scrapy.Request | None:
        """The request for ``url`` once ``events.max_requests_per_minute`` allows it (no more
        in any 60 seconds, retries included); None if the run ends first."""
        limit = self.config.events.max_requests_per_minute
        while True:
            now = time.monotonic()
            while self._sent and self._sent[0] <= now - RATE_WINDOW_SECONDS:
                self._sent.popleft()
            if len(self._sent) < limit:
                break
            wait = self._sent[0] + RATE_WINDOW_SECONDS - now
            left = self.started + self.run_seconds - now
            stats: Any = self.crawler.stats
            stats.inc_value("politeness/wait_seconds", min(wait, max(left, 0.0)))
            if wait >= left:
                await pause(max(left, 0.0))
                self.logger.info("ran for %.0f s: ending (waiting for the rate)", self.run_seconds)
                return None
            await pause(wait)
            if self._should_end(True):
                return None
        self._sent.append(time.monotonic())
        return self._request(url)

    def _follows_configured_url(self, next_url: str) -> bool:
        want, got = urlsplit(self.config.events.url), urlsplit(next_url)
        return (got.scheme, got.hostname, got.port, got.path.rstrip("/")) == (
            want.scheme,
            want.hostname,
            want.port,
            want.path.rstrip("/"),
        )


def _query_text(url: str, key: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(key)
    return values[0] if values else None


def _query_number(url: str, key: str, default: float) -> float:
    try:
        return max(0.0, float(_query_text(url, key) or default))
    except ValueError:
        return default


def _describe(failure: Failure) -> str:
    """A network error in one line, without any URL (it would hold the token)."""
    message = str(failure.value).strip().splitlines()
    text = f"{type(failure.value).__name__}" + (f": {message[0]}" if message else "")
    words = [WHAT if "://" in word else word for word in text.split()]
    return redact(" ".join(words))
