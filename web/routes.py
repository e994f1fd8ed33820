"""The pages' router: sign-in and CSRF before every handler, HTML error pages, static files."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response, Router
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.static_files import create_static_files_router

from control_api.problems import http_problem, log_failure, page_error, refuse_nul
from roomwatch.errors import AccountNotChosen, RoomwatchError
from web.auth import require_session
from web.pages.agent import AgentController
from web.pages.agent_jobs import JobController
from web.pages.agent_sessions import SessionPagesController
from web.pages.follow import FollowController
from web.pages.login import LoginController
from web.pages.profile import ProfileController
from web.pages.room import RoomController
from web.pages.users import UsersController
from web.templating import STATIC, page

PAGE_PATHS = (
    r"^/(?:$|login$|logout$|users(?:/|$)|images/|follow(?:/|$)|room(?:/|$)|agent(?:/|$)|static/)"
)
"""The paths the pages own: the API's bearer check leaves them to :mod:`web.auth`."""


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The page for an error: its status and message are the API's for the same error
    (:func:`control_api.problems.page_error`); a failure is logged, never shown."""
    status, detail = page_error(exc)
    if status >= 500:
        log_failure(f"page {request.url.path}", exc)
    # Several accounts and none named: the page offers them in the header's switcher.
    accounts = exc.choices if isinstance(exc, AccountNotChosen) else ()
    response = page(
        request, "error.html", status_code=status, status=status, detail=detail, accounts=accounts
    )
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)  # the rate limit of a 429, Allow of a 405
    return response


async def _before_page(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Sign-in and CSRF first (nothing of a stranger's body is read), then NUL refused as the
    API does, as a page. A router's ``before_request`` replaces the app's, so the pages name
    both here."""
    signed_out = await require_session(request)
    if signed_out is not None:
        return signed_out
    await refuse_nul(request)
    return None


def page_or_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """For errors raised before any router (no such route, method not allowed): an HTML page
    on the pages' paths, problem details everywhere else (the app-level handler)."""
    if re.match(PAGE_PATHS, request.url.path):
        return _error_page(request, exc)
    return http_problem(request, exc)


def web_router() -> Router:
    """Every page, plus ``/static/`` (open to all: nothing in it is private)."""
    pages = Router(
        path="/",
        route_handlers=[
            LoginController,
            UsersController,
            ProfileController,
            FollowController,
            RoomController,
            AgentController,
            JobController,
            SessionPagesController,
        ],
        before_request=_before_page,
        # Every key of the app's handlers that an error here could match (else the app's
        # problem details, or the plugin's, keyed on a subclass, would win over Exception).
        exception_handlers={
            HTTPException: _error_page,
            ProblemDetailsException: _error_page,
            ValidationException: _error_page,
            RoomwatchError: _error_page,
            Exception: _error_page,
        },
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC], include_in_schema=False
    )
    return Router(path="/", route_handlers=[pages, static], include_in_schema=False)
