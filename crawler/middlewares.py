"""The downloader middlewares of the crawls: the agent-wide pace, and the API crawls' back-off.

**Politeness across the whole agent** (:class:`PolitenessMiddleware`): at most one request per
interval to a rate-limited API.

CBHours allows one API request per second, and a live and an activity crawl may run at the same
time in different processes, so the pace is kept in a file every crawl process shares
(``data_dir/ratelimit/cbhours``): it holds the earliest time (``CLOCK_MONOTONIC``, one clock for
every process on the machine) the next request may leave. A request takes the slot under an
exclusive ``flock`` and moves that time one interval ahead; everyone else waits for it.

The wait never blocks the reactor: the lock is tried without blocking (it is held for a read and
a write of a few bytes) and the waiting is a reactor timer. The slot is taken on the reactor
thread, right before the request goes out, on purpose: had a worker thread taken it, the hop
back to a busy reactor would sit between "slot taken" and "request sent", and the API counts
arrivals, not our bookkeeping.

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

import fcntl
import os
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from roomwatch.config import BackoffConfig, Config

_LOCK_RETRY_SECONDS = 0.001
_STALE_SECONDS = 3600.0  # a slot further ahead than this predates a reboot (clock restarted)


async def pause(seconds: float) -> None:
    """Waits on the reactor's clock without blocking it."""
    from twisted.internet import reactor  # the crawl process has installed its reactor by now

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class SharedPace:
    """One request per ``interval`` among every process that opens the same file.

    Attributes:
        path: the shared file; its content is the monotonic time the next request may leave.
        interval: seconds from one request to the next.
    """

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        """Closes the file (the pace itself lives on in it)."""
        os.close(self._fd)

    def try_take(self, now: float | None = None) -> float:
        """Takes the next slot if it is due; returns 0.0, or the seconds left to wait.

        Args:
            now: ``time.monotonic()``; taken here when None.
        """
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _LOCK_RETRY_SECONDS  # another process is between its read and its write
        try:
            now = time.monotonic() if now is None else now
            due = self._read(now)
            if due > now:
                return due - now
            self._write(now + self.interval)
            return 0.0
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def hold_off(self, seconds: float, now: float | None = None) -> None:
        """Lets no request leave for ``seconds`` (the API asked us to back off), blocking.

        Args:
            seconds: how long from now.
            now: ``time.monotonic()``; taken here when None.
        """
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # held only for a read and a write by anyone
        try:
            now = time.monotonic() if now is None else now
            if now + seconds > self._read(now):
                self._write(now + seconds)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read(self, now: float) -> float:
        raw = os.pread(self._fd, 64, 0)
        try:
            due = float(raw.decode("ascii"))
        except ValueError:
            return now  # new (empty) file
        return now if due > now + _STALE_SECONDS else due

    def _write(self, due: float) -> None:
        data = f"{due:.6f}".encode("ascii")
        os.pwrite(self._fd, data.ljust(32), 0)


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
        pace = SharedPace(
            config.data_path / "ratelimit" / "cbhours", config.cbhours.min_interval_seconds
        )
        return cls(crawler, pace, urlsplit(config.cbhours.url).netloc, config.backoff.cap_seconds)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if urlsplit(request.url).netloc != self.netloc:
            return
        started = time.monotonic()
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
