"""What the two CBHours spiders share (FORMATS.md §2): requests, the Error Code:300 answer,
field-naming decode errors, the "no trophy" item, and a base spider with the failure errback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import msgspec
import scrapy
from twisted.python.failure import Failure

from crawler.backoff import describe_failure
from roomwatch.errors import DecodeError, JobError
from roomwatch.text import clean_json
from spiders.base import RoomwatchSpider
from storage.writers import mark_without_trophy

if TYPE_CHECKING:
    import psycopg

ERROR_CODE_300 = "Error Code:300"
"""How CBHours says a model is not in its trophy database (both known clients test this)."""


class _ErrorAnswer(msgspec.Struct):
    """``{"status": "error", "message": "..."}``: any action's refusal."""

    status: str
    message: str = ""


_error_answer = msgspec.json.Decoder(_ErrorAnswer)


def error_message(body: bytes) -> str | None:
    """The message of an error answer (``status: "error"``), None for any other body."""
    try:
        answer = _error_answer.decode(clean_json(body))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return answer.message if answer.status == "error" else None


def is_no_trophy(message: str | None) -> bool:
    """Whether an error message is the Error Code:300 "not in the trophy database" answer."""
    return message is not None and ERROR_CODE_300 in message


def where(exc: Exception, prefix: str = "") -> str:
    """msgspec's ``Expected `int`, got `str` - at `$.rank``` as ``data.a.rank: expected `int`,
    got `str``` (with prefix ``data.a``): the field first, as job errors read.

    msgspec does not name object keys in its paths (``$[...]``), so callers decode keyed
    objects entry by entry and pass the key in ``prefix``.
    """
    message, sep, path = str(exc).partition(" - at `$")
    path = path.rstrip("`") if sep else ""
    if prefix and path and not path.startswith("["):
        path = "." + path.lstrip(".")
    field = f"{prefix}{path}".lstrip(".") or "$"
    return f"{field}: {message[0].lower()}{message[1:]}"


def decode_error(
    exc: msgspec.ValidationError | msgspec.DecodeError, prefix: str = ""
) -> DecodeError:
    """A decode failure as the one-line error that fails the request, naming the field."""
    if isinstance(exc, msgspec.ValidationError):
        return DecodeError(where(exc, prefix))
    return DecodeError(f"{prefix or 'body'}: not JSON ({exc})")


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


class NoTrophy(msgspec.Struct, frozen=True):
    """CBHours does not know these persons (omitted, or Error Code:300): recheck them later."""

    kind: ClassVar[str] = "cbhours_no_trophy"
    usernames: list[str]
    checked_at: dt.datetime

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> int:
        return mark_without_trophy(conn, self.usernames, self.checked_at)


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
