"""Problem details for bad input that always name the offending parameter by its wire name.

Litestar reports a parameter that failed validation under its Python name (``from_`` for the
query parameter ``from``), and our own checks (cursors, date ranges) need the same shape. Every
400 of the routes that use :data:`PROBLEM_HANDLERS` therefore looks like::

    {"status": 400, "title": "Bad Request", "detail": "limit: Expected `int` <= 200",
     "field": "limit", "extra": [{"key": "limit", "source": "query", "message": "..."}]}
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import ParameterKwarg
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.types import ExceptionHandlersMap

log = logging.getLogger(__name__)
_MEDIA_TYPE = "application/problem+json"
_MISSING = re.compile(r"Missing required (?P<source>\w+) parameter '(?P<name>[^']+)'")


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


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=_MEDIA_TYPE,
        generate_examples=False,
    )


BAD_REQUEST_RESPONSES = {400: _spec("A parameter is invalid; `field` names it")}
"""OpenAPI ``responses`` of a route that only reads parameters."""
NOT_FOUND_RESPONSES = {**BAD_REQUEST_RESPONSES, 404: _spec("No such person; `field` names it")}
"""OpenAPI ``responses`` of a route whose path names a person."""


def bad_param(field: str, message: str, source: str = "query") -> ValidationException:
    """The exception for a parameter that parsed but makes no sense (raise it)."""
    return ValidationException(
        detail=f"{field}: {message}",
        extra=[{"key": field, "source": source, "message": message}],
    )


def not_found(field: str, message: str) -> ProblemDetailsException:
    """The exception for a path parameter that names nothing (raise it): 404 naming the field."""
    return ProblemDetailsException(
        status_code=404, title="Not Found", detail=message, extra={"field": field}
    )


def _wire_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Python parameter name -> the name a client sends (``from_`` -> ``from``)."""
    names: dict[str, str] = {}
    for name, field in request.route_handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and kwarg.name:
            names[name] = kwarg.name
    return names


def validation_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Renders a validation failure as 400 problem details naming the field."""
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
    return Response(body, status_code=400, media_type=_MEDIA_TYPE)


PROBLEM_HANDLERS: ExceptionHandlersMap = {ValidationException: validation_problem}
"""Exception handlers for a controller (or router) whose 400s should name the field."""


def internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The last resort for an exception no handler expected: log it, answer a bare 500.

    The log line goes through the root handlers, hence the redaction filter (its traceback
    too); the answer names no exception, query or value, which could hold data or secrets.
    """
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    log.error(
        "%s %s failed: %s: %s",
        request.method,
        request.url.path.encode("unicode_escape").decode("ascii"),  # one line, whatever it holds
        type(exc).__name__,
        reason,
        exc_info=exc,
    )
    body = {
        "status": 500,
        "title": "Internal Server Error",
        "detail": "the request failed on the server; the agent's log has the reason",
    }
    return Response(body, status_code=500, media_type=_MEDIA_TYPE)


async def refuse_nul(request: Request[Any, Any, Any]) -> None:
    """PostgreSQL text cannot hold NUL: refuse it at the door instead of failing in a query.

    The app's ``before_request``; the pages' router, whose own ``before_request`` replaces the
    app's (Litestar runs only the innermost), calls it first too.

    Path parameters are checked as well as query parameters: ``/persons/a%00b`` once ended in
    an unlogged 500 from the database driver.
    """
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str) and "\x00" in value:
            raise ProblemDetailsException(
                status_code=400,
                title="Bad Request",
                detail=f"{name}: NUL characters are not accepted",
                extra={"field": name},
            )
    # Only JSON spells NUL as \u0000; an uploaded page or a form may hold those six characters
    # as text (a saved page's script), and their NUL bytes are the parsers' to clean.
    if (
        request.method in ("POST", "PUT", "PATCH")
        and "json" in request.headers.get("content-type", "")
        and b"\\u0000" in await request.body()
    ):
        raise ProblemDetailsException(
            status_code=400,
            title="Bad Request",
            detail="body: NUL characters (\\u0000) are not accepted",
            extra={"field": "body"},
        )
