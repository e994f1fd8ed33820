"""Signing in to the pages, CSRF, and the headers every response carries (no browser needed).

The browser tests (tests/web/test_*_page.py) cover the same rules through real Chromium; these
pin the HTTP details: cookie attributes, status codes, what the API and the pages each accept.
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from parsel import Selector

from storage.writers import write_affiliate_poll
from tests.factories import TOKEN, room
from tests.web.pages_support import csrf_of, sign_in
from web.auth import SIGN_IN_FAILURES, SignInThrottle, WebSessions, safe_next
from web.headers import HEADERS

PAGES = [
    "/users",
    "/users/alice",
    "/users/alice/snapshots",
    "/follow",
    "/follow/export",
    "/room",
    "/room/feed",
    "/agent",
    "/agent/jobs/1",
    "/agent/jobs/1/fragment",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_session(visitor: TestClient[Litestar], path: str) -> None:
    answer = visitor.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_the_root_leads_to_users_and_static_files_are_open(visitor: TestClient[Litestar]) -> None:
    assert visitor.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    sign_in(visitor)
    assert visitor.get("/", follow_redirects=False).headers["location"] == "/users"
    visitor.cookies.clear()
    style = visitor.get("/static/style.css")
    assert style.status_code == 200
    assert ".src-affiliate" in style.text
    # Every page names its icon (a browser asks /favicon.ico otherwise: a 404 on each page).
    icon = Selector(text=visitor.get("/login").text).css("link[rel=icon]::attr(href)").get()
    assert icon is not None
    answer = visitor.get(icon)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg")


def test_sign_in_sets_a_strict_httponly_cookie(visitor: TestClient[Litestar]) -> None:
    answer = sign_in(visitor, nxt="/follow?tab=followers")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/follow?tab=followers"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("roomwatch_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie  # api.session_hours, 12 by default
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never return
    assert TOKEN not in answer.text and all(TOKEN not in c for c in answer.headers.values())
    assert visitor.get("/users").status_code == 200


def test_over_https_the_cookie_is_secure(app: Litestar) -> None:
    with TestClient(app, base_url="https://roomwatch.local") as client:
        answer = sign_in(client)
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("roomwatch_session=")
    )
    assert "Secure" in cookie


def test_a_wrong_token_opens_nothing(visitor: TestClient[Litestar]) -> None:
    answer = sign_in(visitor, token=TOKEN[:-1] + "X")
    assert answer.status_code == 401
    assert "not this agent" in answer.text
    assert "roomwatch_session" not in answer.headers.get("set-cookie", "")
    assert visitor.get("/users", follow_redirects=False).status_code == 303


def test_wrong_tokens_hold_the_address_off_but_sign_ins_never_count(
    visitor: TestClient[Litestar],
) -> None:
    for _ in range(SIGN_IN_FAILURES + 5):  # a person signing in often is never held up
        visitor.cookies.clear()
        assert sign_in(visitor).status_code == 303
    visitor.cookies.clear()
    for _ in range(SIGN_IN_FAILURES):
        assert sign_in(visitor, token=TOKEN[:-1] + "X").status_code == 401
    # Then the right token too is refused: else a script would learn it all the same.
    answer = sign_in(visitor)
    assert answer.status_code == 429
    assert answer.headers["content-type"].startswith("text/html")
    assert 0 < int(answer.headers["retry-after"]) <= 60
    assert "Too many wrong tokens" in answer.text
    assert "roomwatch_session" not in answer.headers.get("set-cookie", "")
    assert visitor.get("/api/v1/status").status_code == 401  # the API keeps its own rules


def test_the_throttle_lets_an_address_try_again_once_its_failures_age() -> None:
    throttle = SignInThrottle(limit=2, window=0.2)
    throttle.failed("a")
    assert throttle.wait("a") == 0.0
    throttle.failed("a")
    assert 0 < throttle.wait("a") <= 0.2 and throttle.wait("b") == 0.0
    time.sleep(0.25)
    assert throttle.wait("a") == 0.0


def test_sign_in_without_the_forms_token_is_refused(visitor: TestClient[Litestar]) -> None:
    """A cross-site form posting the right token (say, from a password manager) gets nowhere."""
    answer = visitor.post("/login", data={"token": TOKEN, "next": "/users"}, follow_redirects=False)
    assert answer.status_code == 403
    assert visitor.get("/users", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
def test_after_sign_in_only_local_paths(target: str) -> None:
    assert safe_next(target) == "/users"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    visitor: TestClient[Litestar],
) -> None:
    sign_in(visitor)
    cookie = visitor.cookies["roomwatch_session"]
    refused = visitor.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert visitor.get("/users").status_code == 200  # still signed in
    done = visitor.post("/logout", data={"csrf_token": csrf_of(visitor)}, follow_redirects=False)
    assert done.headers["location"] == "/login"
    # The old cookie, replayed, opens nothing: the session is gone on the server.
    visitor.cookies.set("roomwatch_session", cookie)
    assert visitor.get("/users", follow_redirects=False).status_code == 303


def test_the_api_never_takes_the_cookie_nor_the_pages_the_token(
    visitor: TestClient[Litestar],
) -> None:
    sign_in(visitor)
    assert visitor.get("/api/v1/persons").status_code == 401
    visitor.cookies.clear()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert visitor.get("/users", headers=bearer, follow_redirects=False).status_code == 303
    assert visitor.get("/api/v1/persons", headers=bearer).status_code == 200


@pytest.mark.parametrize(
    "path", ["/login", "/users", "/users?following=maybe", "/static/app.js", "/api/v1/health"]
)
def test_security_headers_everywhere(visitor: TestClient[Litestar], path: str) -> None:
    sign_in(visitor)
    answer = visitor.get(path, follow_redirects=False)
    for name, value in HEADERS.items():
        assert answer.headers[name] == value
    policy = HEADERS["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "script-src 'self'" in policy


def test_an_expired_session_is_refused() -> None:
    sessions = WebSessions(lifetime=0)
    sid = sessions.open()
    assert sessions.get(sid) is None
    lasting = WebSessions(lifetime=60)
    assert lasting.get(lasting.open()) is not None
    assert lasting.get("forged") is None and lasting.get(None) is None


def test_broadcaster_markup_is_shown_as_text(visitor: TestClient[Litestar], db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        write_affiliate_poll(
            conn,
            [
                room(
                    "mallory",
                    display_name="<b>bold</b>",
                    tags=["<script>alert(1)</script>"],
                    room_subject='"><img src=x onerror=alert(1)>',
                )
            ],
            observed_at=dt.datetime.now(dt.UTC),
        )
    sign_in(visitor)
    page = visitor.get("/users").text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_bad_filters_are_a_page_naming_the_field(visitor: TestClient[Litestar]) -> None:
    sign_in(visitor)
    answer = visitor.get("/users?following=maybe")
    assert answer.status_code == 400
    assert "following: expected true or false" in answer.text
    assert "text/html" in answer.headers["content-type"]
    assert visitor.get("/users?cursor=garbage").status_code == 400
    assert visitor.get("/users?sort=nonsense").status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/users/alice/nothing", 404), ("GET", "/follow/xyz", 404), ("PUT", "/users", 405)],
)
def test_errors_on_page_paths_are_pages(
    visitor: TestClient[Litestar], method: str, path: str, status: int
) -> None:
    sign_in(visitor)
    answer = visitor.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    api = visitor.get("/api/v1/nothing", headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_nul_on_a_page_is_a_400_page_naming_the_field(visitor: TestClient[Litestar]) -> None:
    sign_in(visitor)
    answer = visitor.get("/users", params={"q": "a\x00b"})
    assert answer.status_code == 400
    assert "q: NUL characters are not accepted" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_a_stranger_is_refused_before_the_body_is_read(visitor: TestClient[Litestar]) -> None:
    """Signed out, a POST is a 403 whatever it carries (its body is never looked at: a NUL in
    it would otherwise have been a 400)."""
    answer = visitor.post(
        "/follow/upload",
        files={"file": ("x.html", b'{"a": "\\u0000"}' * 1000, "text/html")},
        follow_redirects=False,
    )
    assert answer.status_code == 403
