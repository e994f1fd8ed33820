"""Exponential back-off for the API crawls: 429, 5xx and network errors are retried, politely.

Replaces Scrapy's ``RetryMiddleware`` for every non-browser spider (``spiders/settings.py``):
the same retry bookkeeping (``retry/count``, which becomes ``crawl_jobs.retries``), but each retry
first waits ``base * factor ** n`` seconds (at most ``cap``), or what the server's
``Retry-After`` asks for (seconds or an HTTP date, also at most ``cap``). After
``backoff.max_retries`` the failure goes to the request's errback, which fails the job with
:func:`describe_failure`: the URL's path and the status, never the query string (it may carry
a campaign slug or other private parameters).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message
from twisted.python.failure import Failure

from crawler.middlewares import pause, retry_after_seconds
from roomwatch.config import BackoffConfig

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
