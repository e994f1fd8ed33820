"""What the two CBHours spiders share: a base spider with API requests, their decoding and
their failure, and the ``usernames`` arguments. The answers' format is ``formats/cbhours.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.middlewares import describe_failure
from roomwatch.errors import JobError, UpstreamError
from spiders.base import RoomwatchSpider

Answer = TypeVar("Answer")


def usernames_arg(args: dict[str, Any], key: str) -> list[str] | None:
    """A spider argument such as ``usernames=a,b`` as lowercase names; None if not given.

    Raises:
        JobError: the argument is given but names nobody.
    """
    if key not in args:
        return None
    names = list(dict.fromkeys(n.strip().lower() for n in str(args[key]).split(",")))
    names = [name for name in names if name]
    if not names:
        raise JobError(f"{key}: expected comma-separated usernames, got {args[key]!r}")
    return names


class CbhoursSpider(RoomwatchSpider):
    """Base of the CBHours spiders: API requests and their failure.

    Two requests at a time are plenty at one request per second (one on the wire, one
    waiting for its slot), and few waiting requests keep the shared pace fair to the other
    CBHours crawl.
    """

    custom_settings: dict[Any, Any] | None = {"CONCURRENT_REQUESTS": 2}  # noqa: RUF012

    def api_request(
        self,
        params: Sequence[tuple[str, str | int]],
        callback: Any,
        what: str,
        **cb_kwargs: Any,
    ) -> scrapy.Request:
        """A GET of ``api.php`` with these parameters.

        Args:
            params: the query, in order.
            callback: the parser of the answer.
            what: names the request in a failure (e.g. ``get_live batch 2``).
            **cb_kwargs: passed to the callback.
        """
        return scrapy.Request(
            f"{self.config.cbhours.url}?{urlencode(params, safe=',')}",
            callback=callback,
            errback=self.request_failed,
            cb_kwargs=cb_kwargs,
            meta={"what": what},
            dont_filter=True,
        )

    def request_failed(self, failure: Failure) -> None:
        """Fails the crawl for a request that failed for good (after its retries)."""
        request = getattr(failure, "request", None)
        what = request.meta.get("what", "request") if request is not None else "request"
        self.fail(f"{what}: {describe_failure(failure)}")

    def decode(self, response: Response, decoder: Callable[[bytes], Answer]) -> Answer | None:
        """The answer decoded, counted as a page read; None once its request failed the crawl
        (an answer that does not match the format, or an error answer)."""
        try:
            answer = decoder(response.body)
        except UpstreamError as exc:
            self.fail(f"{response.meta['what']}: {exc}")
            return None
        self.crawler.stats.inc_value("roomwatch/pages")
        return answer
