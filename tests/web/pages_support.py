"""Signing a TestClient in to the pages as a browser would (the HTTP-level page tests share it)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import TOKEN


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


def csrf_of(client: TestClient[Litestar]) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/users").text)
    assert found
    return found.group(1)
