"""Problem details for bad request bodies that name the body field, not the handler's ``data``.

Litestar reports an unknown or missing body field under the handler argument's name
(``data: Object missing required field `spider```); clients need the field itself. These
handlers move the field named in msgspec's message into ``field`` and ``extra[].key``, and
render a roomwatch :class:`~roomwatch.errors.ScheduleError` the same way.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from control_api.problems import Problem, validation_problem
from roomwatch.errors import ScheduleError

_MEDIA_TYPE = "application/problem+json"
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


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


def body_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """A 400 naming the offending body field (see the module docstring)."""
    response = validation_problem(request, exc)
    body = response.content
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
    return response


def bad_field(field: str, message: str) -> ValidationException:
    """The exception for a body field that decoded but makes no sense (raise it)."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "source": "body", "message": message}]
    )


def schedule_problem(
    request: Request[Any, Any, Any], exc: ScheduleError
) -> Response[dict[str, Any]]:
    """A refused schedule change as a 400 naming the field."""
    return body_problem(request, bad_field(exc.field, exc.reason))


BODY_PROBLEM_HANDLERS: ExceptionHandlersMap = {
    ValidationException: body_problem,
    ScheduleError: schedule_problem,
}
"""Exception handlers for controllers that take a JSON body."""
