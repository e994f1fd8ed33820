"""The downloader middlewares of the crawls: the shared pace, and the API crawls' back-off.

**Politeness across every crawl** (:class:`PolitenessMiddleware`): at most one request per
interval to a rate-limited API, whichever process or machine sends it.

CBHours allows one API request per second, and a live and an activity crawl may run at the same
time, in different processes and, with Scrapyd nodes, on different machines, so the pace is a
row in PostgreSQL (``storage/pace.py``): a request takes the slot there when it is due (the
next one is then an interval later, by the database's clock); when it is not, it waits the
time left and asks again.

The slot is taken on the reactor thread, right before the request goes out, on purpose: had a
worker thread taken it, the hop back to a busy reactor would sit between "slot taken" and
"request sent", and the API counts arrivals, not our bookkeeping. That costs the reactor one
short statement (well under a millisecond on a local database) per request, on a connection
of the middleware's own, so it never waits for a pooled one. The waiting itself is a reactor
timer.

**Back-off** (:class:`BackoffMiddleware`) for the API crawls: 429, 5xx and network errors are
retried, politely. It replaces Scrapy's ``RetryMiddleware`` for every non-browser spider
(``crawler/settings.py``): the same retry bookkeeping (``retry/count``, which becomes
``crawl_jobs.retries``), but each retry first waits ``base * factor ** n`` seconds (at most
``cap``), or what the server's ``Retry-After`` asks for (seconds or an HTTP date, also at most
``cap``). After ``backoff.max_retries`` the failure goes to the request's errback, which fails
the job with :func:`describe_failure`: the URL's path and the status, never the query string
(it may carry a campaign slug or other private parameters).
"""

from __future__ import annotations

import re
import threading
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from crawler.database import CrawlDatabase
from roomwatch.config import BackoffConfig, Config
from storage.pace import CBHOURS, hold_off, take_slot

if TYPE_CHECKING:
    from psycopg import Connection


async def pause(seconds: float) -> None:
    """Waits on the reactor's clock without blocking it."""
    from twisted.internet import reactor  # the crawl process has installed its reactor by now

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class SharedPace:
    """The pace ``name`` of ``storage/pace.py``, on a connection of its own.

    The connection is opened at the first use (a crawl that never calls the paced API opens
    none), again after it broke (a database restart), and closed with :meth:`close`.

    Attributes:
        name: the pace's row.
        interval: seconds from one request to the next.
    """

    def __init__(self, database: CrawlDatabase, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self._database = database
        self._conn: Connection[Any] | None = None
        self._opening = threading.Lock()  # requests in flight may all ask at once

    def connect(self) -> None:
        """Opens the connection if there is none that works (blocking: call off the reactor)."""
        with self._opening:
            if self._conn is None or self._conn.closed:
                self._conn = self._database.own_connection()

    def try_take(self) -> float:
        """Takes the slot if it is due: 0.0; else the seconds left to wait (see the module
        docstring for why this blocks, briefly)."""
        assert self._conn is not None, "connect() first"
        return take_slot(self._conn, self.name, self.interval)

    def hold_off(self, seconds: float) -> None:
        """Lets no request leave for ``seconds`` (the API asked us to back off)."""
        assert self._conn is not None, "connect() first"
        hold_off(self._conn, self.name, seconds)

    def close(self) -> None:
        """Closes the connection (the pace itself lives on in the database)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PolitenessMiddleware:
    """Downloader middleware: every request to the CBHours host waits for the shared pace.

    It sits last before the download handler (order 990), so nothing runs between taking the
    slot and sending. A 429 from the host also holds every crawl off for its ``Retry-After``
    (at most ``backoff.cap_seconds``; one interval if it gives none).
    Stats: ``politeness/requests`` and ``politeness/wait_seconds``.
    """

    def __init__(self, crawler: Any, pace: SharedPace, netloc: str, cap: float) -> None:
        self.crawler = crawler
        self.pace = pace
        self.netloc = netloc
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler: Any) -> PolitenessMiddleware:
        config: Config = crawler.settings["ROOMWATCH_CONFIG"]
        pace = SharedPace(CrawlDatabase.of(crawler), CBHOURS, config.cbhours.min_interval_seconds)
        middleware = cls(
            crawler, pace, urlsplit(config.cbhours.url).netloc, config.backoff.cap_seconds
        )
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if urlsplit(request.url).netloc != self.netloc:
            return
        started = time.monotonic()
        await maybe_deferred_to_future(deferToThread(self.pace.connect))
        while (wait := self.pace.try_take()) > 0:
            await pause(wait)
        stats = self.crawler.stats
        stats.inc_value("politeness/requests")
        stats.inc_value("politeness/wait_seconds", time.monotonic() - started)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        if response.status == 429 and urlsplit(request.url).netloc == self.netloc:
            seconds = retry_after_seconds(response.headers.get(b"Retry-After"))
            self.pace.hold_off(min(self.cap, self.pace.interval if seconds is None else seconds))
        return response

    async def spider_closed(self, spider: Any) -> None:
        await maybe_deferred_to_future(deferToThread(self.pace.close))


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delay-seconds or an HTTP date; None if
    absent or unreadable (the caller then uses its own back-off).

    Args:
        value: the header value.
        now: ``time.time()``, for HTTP dates; taken here when None.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


_URL = re.compile(r"https?://[^\s'\"<>]+")


def is_retryable(status: int) -> bool:
    """Statuses worth another try: rate limited, timed out, or a server-side error."""
    return status in (408, 429) or 500 <= status <= 599


def backoff_seconds(settings: BackoffConfig, retries_done: int, retry_after: float | None) -> float:
    """The wait before the next retry.

    Args:
        settings: base, factor and cap.
        retries_done: retries of this request so far (0 before the first one).
        retry_after: what the server's ``Retry-After`` asked for, if it said.
    """
    wanted = (
        retry_after
        if retry_after is not None
        else settings.base_seconds * settings.factor**retries_done
    )
    return min(wanted, settings.cap_seconds)


class BackoffMiddleware:
    """Downloader middleware: retries with exponential back-off (see the module docstring).

    Stats: ``backoff/429``, ``backoff/5xx``, ``backoff/other`` (408), ``backoff/exception`` count
    the waits, ``backoff/wait_seconds`` sums them; ``retry/*`` are Scrapy's usual retry stats.
    The optional ``spider`` arguments keep the methods callable by Scrapy before 2.13, which
    passed the spider; newer versions do not.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings: BackoffConfig = crawler.settings["ROOMWATCH_CONFIG"].backoff
        self.exceptions = tuple(
            load_object(name) if isinstance(name, str) else name
            for name in crawler.settings.getlist("RETRY_EXCEPTIONS")
        )

    @classmethod
    def from_crawler(cls, crawler: Any) -> BackoffMiddleware:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if request.meta.get("dont_retry") or not is_retryable(response.status):
            return response
        retry_after = retry_after_seconds(response.headers.get(b"Retry-After"))
        status = response.status
        kind = "429" if status == 429 else "5xx" if status >= 500 else "other"
        retry = await self._retry(request, response_status_message(status), kind, retry_after)
        return retry or response

    async def process_exception(
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions):
            return None
        return await self._retry(request, exception, "exception", None)

    async def _retry(
        self, request: Request, reason: str | Exception, kind: str, retry_after: float | None
    ) -> Request | None:
        retries_done = int(request.meta.get("retry_times", 0))
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            max_retry_times=self.settings.max_retries,
        )
        if retry is None:
            return None  # out of retries: the failure reaches the errback
        seconds = backoff_seconds(self.settings, retries_done, retry_after)
        stats = self.crawler.stats
        stats.inc_value(f"backoff/{kind}")
        stats.inc_value("backoff/wait_seconds", seconds)
        await pause(seconds)
        return retry


def describe_failure(failure: Failure) -> str:
    """One line for a request that failed for good: path, status or error, retries.

    For example ``/api.php: HTTP 429 after 4 retries``. Any URL in an error message is cut to
    its path, so no query string reaches the job's error.
    """
    request: Request | None = getattr(failure, "request", None)
    error = failure.value
    if isinstance(error, HttpError):
        request = error.response.request or request
        what = f"HTTP {error.response.status}"
    else:
        message = _URL.sub(lambda m: urlsplit(m.group(0)).path or "/", str(error)).strip()
        what = f"{type(error).__name__}" + (f": {message}" if message else "")
    if request is None:
        return what
    retries = int(request.meta.get("retry_times", 0))
    after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
    return f"{urlsplit(request.url).path}: {what}{after}"
