"""The one place where an error becomes an answer: RFC 9457 problem details for the API, and the
status and message of the pages' error pages.

Routes, helpers and pages never build an answer for an error: they raise one of
:mod:`roomwatch.errors` (``InvalidInput``, ``NotFound``, ``JobConflict``...) and the handlers
here, installed once on the API's router, turn it into a body that names the field at fault::

    {"status": 400, "title": "Bad Request", "detail": "limit: Expected `int` <= 200",
     "field": "limit", "extra": [{"key": "limit", "source": "query", "message": "..."}]}

Litestar's own validation errors get the same shape: it reports a parameter under its Python
name (``from_`` for the query parameter ``from``) and an unknown or missing body field under the
handler argument's name (``data: Object missing required field `spider```); both are renamed
to what the client sent. Litestar's own HTTP errors (401 from the bearer check, 404 and 405
for no route) keep the problem-details plugin's rendering, reached through :func:`http_problem`
where a handler must choose. Anything no rule covers is logged and answered as a bare 500.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import ParameterKwarg
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.types import ExceptionHandlersMap

from roomwatch.errors import (
    FollowLossHeld,
    HtmlImportError,
    HtmlTooLargeError,
    InvalidInput,
    JobConflict,
    JobEnded,
    NotFound,
    NotLoggedIn,
    RequestError,
    RoomwatchError,
    SavedAtError,
    ScrapydError,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
_MEDIA_TYPE = "application/problem+json"
_MISSING = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
_INTERNAL = "the request failed on the server; the agent's log has the reason"
PAGE_INTERNAL = "Something went wrong on the agent; its log says what."
"""What an error page says of a failure no rule covers (the log has the reason)."""


class ProblemItem(msgspec.Struct, frozen=True):
    """One wrong parameter: its name, where it was sent, and what is wrong with it."""

    key: str
    source: str
    message: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details as these routes send them (``field``: the parameter at fault)."""

    status: int
    title: str
    detail: str
    field: str | None = None
    extra: list[ProblemItem] | None = None


class ConflictProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A 409: the request collides with a job that exists (``existing_job_id``, if any)."""

    status: int
    title: str
    detail: str
    field: str | None = None
    existing_job_id: int | None = None


def problem_spec(description: str, container: type[msgspec.Struct] = Problem) -> ResponseSpec:
    """An OpenAPI ``responses`` entry for problem details, so the schema lists every error."""
    return ResponseSpec(
        data_container=container,
        description=description,
        media_type=_MEDIA_TYPE,
        generate_examples=False,
    )


BAD_REQUEST_RESPONSES = {400: problem_spec("A parameter is invalid; `field` names it")}
"""OpenAPI ``responses`` of a route that only reads parameters."""
NOT_FOUND_RESPONSES = {
    **BAD_REQUEST_RESPONSES,
    404: problem_spec("No such person; `field` names it"),
}
"""OpenAPI ``responses`` of a route whose path names a person."""

# The rules: error -> (status, the field it names when the error does not carry one).
# Looked up along the error's class hierarchy, most specific first.
_RULES: dict[type[RoomwatchError], tuple[int, str | None]] = {
    InvalidInput: (400, None),
    NotFound: (404, None),
    UnsupportedMediaType: (415, None),
    NotLoggedIn: (422, None),
    JobConflict: (409, "spider"),
    JobEnded: (409, "job_id"),
    HtmlTooLargeError: (413, "body"),
    SavedAtError: (400, "saved_at"),  # 409 when stale: older than the list's last check
    HtmlImportError: (400, "body"),
    FollowLossHeld: (409, "confirm_loss"),
    ScrapydError: (502, "job_id"),  # the node that ran a job, asked for its log
}
_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def _rule(exc: RoomwatchError) -> tuple[int, str | None] | None:
    return next((_RULES[kind] for kind in type(exc).__mro__ if kind in _RULES), None)


def problem_body(exc: RoomwatchError) -> dict[str, Any] | None:
    """The problem details of one of roomwatch's errors; None when no rule covers it (a
    failure, not a refusal: the caller answers 500)."""
    rule = _rule(exc)
    if rule is None:
        return None
    status, field = rule
    detail = str(exc)
    extra: list[dict[str, str]] | None = None
    existing: int | None = None
    if isinstance(exc, RequestError):
        field = exc.field
        if isinstance(exc, InvalidInput) and exc.source is not None:
            extra = [{"key": exc.field, "source": exc.source, "message": exc.reason}]
    elif isinstance(exc, SavedAtError):
        status = 409 if exc.stale else 400
    elif isinstance(exc, HtmlImportError):
        detail = f"{field}: {exc}"
    elif isinstance(exc, FollowLossHeld):
        detail = f"{exc}; send confirm_loss=true to confirm"
    elif isinstance(exc, JobConflict):
        existing = exc.existing
    body: dict[str, Any] = {"status": status, "title": _TITLES[status], "detail": detail}
    body["field"] = field
    if extra is not None:
        body["extra"] = extra
    if existing is not None:
        body["existing_job_id"] = existing
    return body


def status_of(exc: RoomwatchError) -> int:
    """The status the API answers ``exc`` with (500 for an error no rule covers); the pages
    that show a refusal in place answer with it too."""
    body = problem_body(exc)
    return 500 if body is None else int(body["status"])


def page_error(exc: Exception) -> tuple[int, str]:
    """The status and the message of the error page for ``exc``: the API's status and detail
    for the same error, Litestar's own for its HTTP errors, and 500 for anything else."""
    if isinstance(exc, RoomwatchError) and (body := problem_body(exc)) is not None:
        return int(body["status"]), str(body["detail"])
    if isinstance(exc, HTTPException):
        return exc.status_code, exc.detail
    return 500, PAGE_INTERNAL


def _wire_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Python parameter name -> the name a client sends (``from_`` -> ``from``)."""
    names: dict[str, str] = {}
    for name, field in request.route_handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and kwarg.name:
            names[name] = kwarg.name
    return names


def _name_body_field(body: dict[str, Any]) -> None:
    """Moves a body field named only in msgspec's message into ``field`` and ``extra``."""
    if isinstance(body.get("field"), str) and body["field"].endswith("[...]"):
        # msgspec's way of saying "some key or value of this mapping": the mapping is the field.
        field = body["field"].removesuffix("[...]")
        body["detail"] = field + str(body["detail"]).removeprefix(body["field"])
        body["field"] = field
        body["extra"] = [{**body["extra"][0], "key": field}]
    named = _NAMED.search(str(body.get("detail", "")))
    if body.get("field") == "data" and named:
        field = named.group(1)
        message = str(body["detail"]).removeprefix("data: ")
        body["field"] = field
        body["detail"] = f"{field}: {message}"
        body["extra"] = [{"key": field, "source": "body", "message": message}]


def validation_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Renders Litestar's validation failure as 400 problem details naming the field."""
    names = _wire_names(request)
    extra = [
        {**item, "key": names.get(item["key"], item["key"])} if "key" in item else item
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    if not extra and (missing := _MISSING.match(exc.detail)):
        # Litestar names a missing parameter only in its message (already by its wire name).
        extra = [{"key": missing["name"], "source": missing["source"], "message": "required"}]
    body: dict[str, Any] = {"status": 400, "title": "Bad Request", "detail": exc.detail}
    if extra:
        first = extra[0]
        if "key" in first:
            body["field"] = first["key"]
            body["detail"] = f"{first['key']}: {first.get('message', exc.detail)}"
        body["extra"] = extra
        _name_body_field(body)
    return Response(body, status_code=400, media_type=_MEDIA_TYPE)


def roomwatch_problem(
    request: Request[Any, Any, Any], exc: RoomwatchError
) -> Response[dict[str, Any]]:
    """Renders a roomwatch error by the rules above (500, logged, when none covers it)."""
    body = problem_body(exc)
    if body is None:
        return internal_problem(request, exc)
    return Response(body, status_code=body["status"], media_type=_MEDIA_TYPE)


def http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """One of Litestar's HTTP errors raised before any router (no such route, wrong method)
    as the problem-details plugin renders it everywhere else."""
    return ProblemDetailsException(
        status_code=exc.status_code, detail=exc.detail, headers=exc.headers
    ).to_response(request)


PROBLEM_HANDLERS: ExceptionHandlersMap = {
    ValidationException: validation_problem,
    RoomwatchError: roomwatch_problem,
}
"""The app's exception handlers: every refusal becomes problem details naming a field."""


def log_failure(what: str, exc: Exception) -> None:
    """Logs a failure nobody expected, once, through the root handlers (hence the redaction
    filter, traceback included); ``what`` says which request."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    log.error("%s failed: %s: %s", what, type(exc).__name__, reason, exc_info=exc)


def internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The last resort for an exception no handler expected: log it, answer a bare 500.

    The answer names no exception, query or value, which could hold data or secrets.
    """
    path = request.url.path.encode("unicode_escape").decode("ascii")  # one line, whatever it holds
    log_failure(f"{request.method} {path}", exc)
    body = {"status": 500, "title": _TITLES[500], "detail": _INTERNAL}
    return Response(body, status_code=500, media_type=_MEDIA_TYPE)


async def refuse_nul(request: Request[Any, Any, Any]) -> None:
    """PostgreSQL text cannot hold NUL: refuse it at the door instead of failing in a query.

    The app's ``before_request``; the pages' router, whose own ``before_request`` replaces the
    app's (Litestar runs only the innermost), calls it first too.

    Path parameters are checked as well as query parameters: ``/persons/a%00b`` once ended in
    an unlogged 500 from the database driver.

    Raises:
        InvalidInput: naming the parameter, or ``body`` for a JSON body that spells NUL.
    """
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(name, "NUL characters are not accepted")
    # Only JSON spells NUL as \u0000; an uploaded page or a form may hold those six characters
    # as text (a saved page's script), and their NUL bytes are the parsers' to clean.
    if (
        request.method in ("POST", "PUT", "PATCH")
        and "json" in request.headers.get("content-type", "")
        and b"\\u0000" in await request.body()
    ):
        raise InvalidInput("body", "NUL characters (\\u0000) are not accepted")
