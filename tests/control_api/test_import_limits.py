"""``POST /imports/html`` with big pages: parsed off the event loop, refused past the limits."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import control_api.imports
import formats.html_import
from control_api.imports import MAX_BODY_BYTES
from formats.html_import import MAX_ELEMENTS
from upstream_sim.site.follow_lists import FollowLists
from upstream_sim.site.list_pages import followers_page
from upstream_sim.site.state import Account

URL = "/api/v1/imports/html"
HTML = {"Content-Type": "text/html"}


def _followers_page(count: int) -> bytes:
    """One followers page listing ``count`` people, in the simulator's markup."""
    names = [f"fan_{index:05d}_x" for index in range(count)]
    account = Account("owner_one", "pw", FollowLists((), (), names))
    html = followers_page(account, page=1, page_size=count, age_gate=False, broken=False)
    return html.encode()


def test_health_answers_while_a_big_page_is_parsed(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parse of a 20,000-card page is held open until /health has answered; parsed on the
    # event loop, it would hold /health back with it (until the gate gives up).
    parsing, answered, parsed = threading.Event(), threading.Event(), threading.Event()
    real_plan = control_api.imports.plan_import

    def held_plan(*args: Any) -> Any:
        parsing.set()
        answered.wait(timeout=15)
        try:
            return real_plan(*args)
        finally:
            parsed.set()

    monkeypatch.setattr(control_api.imports, "plan_import", held_plan)
    imported: list[httpx.Response] = []
    page = _followers_page(20_000)
    upload = threading.Thread(
        target=lambda: imported.append(
            client.post(URL, params={"kind": "followers"}, content=page, headers=HTML)
        )
    )
    upload.start()
    try:
        assert parsing.wait(timeout=60)
        health = client.get("/api/v1/health")
        parse_done_before_health = parsed.is_set()
        answered.set()
    finally:
        answered.set()
        upload.join(timeout=120)
    assert health.status_code == 200
    assert not parse_done_before_health  # /health answered while the import was still parsing
    assert imported[0].status_code == 200, imported[0].text
    assert imported[0].json()["recorded"] == 20_000


def test_a_page_with_too_many_elements_is_413(client: TestClient[Litestar]) -> None:
    page = b"<html><body><div id='main'>" + b"<i></i>" * MAX_ELEMENTS + b"</div></body></html>"
    response = client.post(URL, params={"kind": "followers"}, content=page, headers=HTML)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == "body"
    assert problem["detail"] == (
        f"body: the request body: the page has {MAX_ELEMENTS + 3} elements, more than the "
        f"limit {MAX_ELEMENTS}"
    )


def test_a_page_over_the_byte_limit_is_413(
    client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats.html_import, "MAX_DOCUMENT_BYTES", 4 * 2**20)
    page = _followers_page(3)
    files = [
        ("page", ("small.html", page, "text/html")),
        ("page", ("big.html", page + b" " * (4 * 2**20), "text/html")),
    ]
    response = client.post(URL, params={"kind": "followers"}, files=files)
    assert response.status_code == 413
    assert response.json()["detail"] == "body: big.html: larger than 4 MiB"


def test_odd_numbers_in_a_saved_page_do_not_end_in_a_500(client: TestClient[Litestar]) -> None:
    def card(name: str, age: str, viewers: str) -> str:
        return (
            f"<li class='room_list_room'><a href='/{name}/' data-room='{name}'></a>"
            f"<span class='age genderf'>{age}</span><ul class='subject'><li title='a\x00b'>"
            f"</li></ul><li class='cams'>{viewers} viewers</li></li>"
        )

    page = (
        "<html><body><span class='followed_counts'>(3/3)</span><ul class='list'>"
        + card("too_old", "99999", "99999999999")
        + card("super_two", "²", "²")
        + card("fine_one", "23", "12")
        + "</ul></body></html>"
    )
    response = client.post(
        URL, params={"kind": "following", "account": "owner"}, content=page.encode(), headers=HTML
    )
    assert response.status_code == 200, response.text
    assert (response.json()["recorded"], response.json()["complete"]) == (3, True)


def test_a_body_over_the_upload_limit_is_413(client: TestClient[Litestar]) -> None:
    body = b"<html>" + b" " * MAX_BODY_BYTES
    response = client.post(URL, params={"kind": "followers"}, content=body, headers=HTML)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
