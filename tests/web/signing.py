"""Signing a TestClient in to the pages, and reading a page's CSRF token (shared by the page
tests that need no browser)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.control_api.conftest import TOKEN


def login_nonce(client: TestClient[Litestar]) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sign_in(client: TestClient[Litestar], token: str = TOKEN, nxt: str = "/users") -> Any:
    nonce = login_nonce(client)
    return client.post(
        "/login",
        data={"token": token, "login_csrf": nonce, "next": nxt},
        follow_redirects=False,
    )


def csrf_of(client: TestClient[Litestar], path: str = "/users") -> str:
    """The CSRF token of the signed-in session, as the page at ``path`` carries it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)
