"""Politeness across the whole agent: at most one request per interval to a rate-limited API.

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
"""

from __future__ import annotations

import fcntl
import os
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater

from roomwatch.config import Config

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
