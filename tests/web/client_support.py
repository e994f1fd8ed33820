"""Signing a TestClient in to the pages and reading a page's CSRF token.

For the TestClient tests of tests/web (the browser tests sign in through the form instead);
test modules never import from each other, so what they share lives here.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.control_api.conftest import TOKEN


def login_nonce(client: TestClient[Litestar]) -> str:
    """The double-submit token of a fresh sign-in form (its cookie is now in ``client``)."""
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sign_in(client: TestClient[Litestar], token: str = TOKEN, nxt: str = "/users") -> Any:
    """Posts the sign-in form; the answer (a 303 when the token is right)."""
    nonce = login_nonce(client)
    return client.post(
        "/login",
        data={"token": token, "login_csrf": nonce, "next": nxt},
        follow_redirects=False,
    )


def csrf_of(client: TestClient[Litestar], path: str = "/users") -> str:
    """The CSRF token of the signed-in session, as a page's forms carry it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)
