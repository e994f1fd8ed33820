"""Signing in to the pages: a server-side session behind an HttpOnly cookie, and CSRF tokens.

``/login`` takes the API token once (compared in constant time) and opens a session kept in the
API process's memory: the cookie holds only a random id, so signing out ends the session for
good and a restart of the agent signs everyone out. Sessions expire ``api.session_hours`` after
sign-in. Every page but ``/login`` and ``/static/`` needs one (else a 303 to ``/login``).

Wrong tokens are limited: after :data:`SIGN_IN_FAILURES` in a minute from one client address,
that address's sign-ins are refused (a 429 page with ``Retry-After``), right token or not, until
the oldest failure is a minute old (:class:`SignInThrottle`); successful sign-ins never count,
so people signing in often are never held up.

Every form carries the session's CSRF token in a hidden ``csrf_token`` field (scripts send it as
``X-CSRF-Token``); an unsafe request without it is refused with 403 before any handler runs. The
sign-in form itself, before any session exists, is protected by a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

SESSION_COOKIE = "roomwatch_session"
LOGIN_COOKIE = "roomwatch_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_PATH = "/login"
OPEN_PATHS = (LOGIN_PATH, "/static/")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_FAILURES = 10


@dataclass
class WebSession:
    """One signed-in browser: its CSRF token, when it ends (``time.monotonic`` seconds), the
    answers to forms waiting for the page a form redirected to (post/redirect/get: a reload
    then shows the page again instead of sending the form twice), and the account it chose
    last (``account=`` of a page: :mod:`web.account_choice`)."""

    csrf: str
    expires: float
    flashes: list[Any] = field(default_factory=list)
    account: str | None = None


def flash(request: Request[Any, Any, Any], message: Any) -> None:
    """Keeps ``message`` for the next page this session renders."""
    request.state.web_session.flashes.append(message)


def take_flashes(request: Request[Any, Any, Any]) -> list[Any]:
    """The messages kept for this page, forgotten once taken."""
    session: WebSession | None = getattr(request.state, "web_session", None)
    if session is None or not session.flashes:
        return []
    taken, session.flashes = session.flashes, []
    return taken


@dataclass
class WebSessions:
    """The open sessions of this process, by the random id their cookie holds."""

    lifetime: float
    _open: dict[str, WebSession] = field(default_factory=dict)

    def open(self) -> str:
        """A new session's id (the cookie value); expired sessions are dropped on the way."""
        now = time.monotonic()
        self._open = {sid: s for sid, s in self._open.items() if s.expires > now}
        sid = secrets.token_urlsafe(32)
        self._open[sid] = WebSession(secrets.token_urlsafe(32), now + self.lifetime)
        return sid

    def get(self, sid: str | None) -> WebSession | None:
        """The live session with that id, else None (unknown, expired or signed out)."""
        session = self._open.get(sid) if sid else None
        if session is None or session.expires <= time.monotonic():
            return None
        return session

    def close(self, sid: str | None) -> None:
        if sid:
            self._open.pop(sid, None)


@dataclass
class SignInThrottle:
    """Wrong tokens per client address over the last ``window`` seconds (this process's
    memory, like the sessions): at ``limit`` of them, the address waits."""

    limit: int = SIGN_IN_FAILURES
    window: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0.0 now."""
        now = time.monotonic()
        failures = self._failures.get(address)
        if failures is None:
            return 0.0
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return 0.0
        return failures[0] + self.window - now if len(failures) >= self.limit else 0.0

    def failed(self, address: str) -> None:
        """Counts a wrong token from ``address``."""
        if len(self._failures) > 10_000:  # many addresses: keep only the recent ones
            for known in list(self._failures):
                self.wait(known)
        self._failures.setdefault(address, deque()).append(time.monotonic())


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison of a submitted token with the API token."""
    return hmac.compare_digest(given.encode(), token.encode())


def is_https(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def session_cookie_args(request: Request[Any, Any, Any], max_age: int) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, Secure when the page was served over HTTPS."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": is_https(request),
        "path": "/",
        "max_age": max_age,
    }


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never ``//host`` or a URL)."""
    if not target:
        return "/users"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/users"
    if "\\" in target:
        return "/users"
    return target


def _is_open(path: str) -> bool:
    return path == LOGIN_PATH or path.startswith(OPEN_PATHS[1])


async def _csrf_given(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def require_session(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """``before_request`` of the pages: sign-in, then CSRF on anything but GET/HEAD/OPTIONS.

    The session is left in ``request.state.web_session`` for the handlers and templates.
    """
    if _is_open(request.url.path):
        return None
    sessions: WebSessions = request.app.state.web_sessions
    session = sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        if request.method not in _SAFE_METHODS:
            raise PermissionDeniedException("sign in first")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
    if request.method not in _SAFE_METHODS and not hmac.compare_digest(
        (await _csrf_given(request)).encode(), session.csrf.encode()
    ):
        raise PermissionDeniedException("missing or wrong CSRF token: reload the page and retry")
    request.state.web_session = session
    return None
