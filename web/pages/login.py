"""``/login`` and ``/logout``: the API token once in, a session cookie out (see :mod:`web.auth`)."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SignInThrottle,
    WebSessions,
    safe_next,
    session_cookie_args,
    token_matches,
)
from web.templating import page

log = logging.getLogger(__name__)
LOGIN_FORM_SECONDS = 3600
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _login_page(
    request: Request[Any, Any, Any],
    next_path: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    """The sign-in form, with a fresh double-submit token in its field and in a cookie;
    ``next_path`` is where a successful sign-in goes (kept across a failed attempt)."""
    nonce = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=nonce,
        next=safe_next(next_path),
        error=error,
    )
    response.set_cookie(LOGIN_COOKIE, nonce, **session_cookie_args(request, LOGIN_FORM_SECONDS))
    return response


class LoginController(Controller):
    """Signing in with the API token, and out."""

    include_in_schema = False

    @get("/login")
    async def form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        sessions: WebSessions = request.app.state.web_sessions
        if sessions.get(request.cookies.get(SESSION_COOKIE)):
            return Redirect(safe_next(request.query_params.get("next")), status_code=303)
        return _login_page(request, request.query_params.get("next"))

    @post("/login", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        sessions: WebSessions = request.app.state.web_sessions
        token: str = request.app.state.api_token
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = data.get("login_csrf", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return _login_page(
                request,
                data.get("next"),
                "The sign-in form expired; please try again.",
                status_code=403,
            )
        throttle: SignInThrottle = request.app.state.sign_in_throttle
        address = request.client.host if request.client else ""
        if (wait := math.ceil(throttle.wait(address))) > 0:
            refused = _login_page(
                request,
                data.get("next"),
                f"Too many wrong tokens from this address; try again in {wait} seconds.",
                status_code=429,
            )
            refused.headers["Retry-After"] = str(wait)
            return refused
        if not token_matches(data.get("token", "").strip(), token):
            throttle.failed(address)
            log.warning("web sign-in refused: wrong token (from %s)", request.client)
            return _login_page(
                request, data.get("next"), "That is not this agent's API token.", status_code=401
            )
        sid = sessions.open()
        response = Redirect(safe_next(data.get("next")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, sid, **session_cookie_args(request, int(sessions.lifetime))
        )
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @get("/logout")
    async def confirm(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "logout.html")

    @post("/logout", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        sessions: WebSessions = request.app.state.web_sessions
        sessions.close(request.cookies.get(SESSION_COOKIE))
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
