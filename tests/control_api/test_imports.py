"""``POST /api/v1/imports/html``: the same import as the CLI, with problem details for bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from litestar import Litestar
from litestar.testing import TestClient

from tests.support import store_stats_count

URL = "/api/v1/imports/html"


def _pages(
    followers: int, page_size: int, *, count_shown: bool = True
) -> tuple[list[str], list[str]]:
    """Followers pages of the account ``owner`` in the simulator's (guessed) markup, built here:
    importing the simulator into this process would change how Litestar renders some enums of
    other routes (their ``Literal`` types compare equal and share typing's cache)."""
    names = [f"fan_{n:03d}" for n in range(followers)]
    last = -(-followers // page_size)
    pages = []
    for number in range(1, last + 1):
        rows = "".join(
            f"<li class='follower'><a class='username' data-testid='follower-username' "
            f"href='/{name}/'>{name}</a></li>"
            for name in names[(number - 1) * page_size : number * page_size]
        )
        links = "".join(
            f"<li{' class=active' if n == number else ''}><a href='?page={n}'>{n}</a></li>"
            for n in range(1, last + 1)
        )
        count = f"<span class='followers_count'>({followers})</span>" if count_shown else ""
        pages.append(
            "<html><body><div id='header'><span class='followed_counts'>(1/2)</span>"
            "<div id='user_information'><a class='username'>owner</a></div></div>"
            f"<div id='main'><h1>Followers {count}"
            f"</h1><ul class='followers_list'>{rows}</ul><ul class='paging'>{links}</ul>"
            "</div></body></html>"
        )
    return pages, names


def _state(conn: psycopg.Connection[Any]) -> dict[str, bool]:
    rows = conn.execute("SELECT username, follower FROM persons WHERE follower IS NOT NULL")
    return dict(rows.fetchall())


def test_one_page_as_html_is_partial_all_pages_as_multipart_complete(
    client: TestClient[Litestar], conn: psycopg.Connection[Any]
) -> None:
    pages, names = _pages(followers=5, page_size=3)
    partial = client.post(
        URL,
        params={"kind": "followers"},
        content=pages[0],
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert (body["complete"], body["recorded"], body["added"]) == (False, 3, None)
    assert body["reason"].startswith("partial: page(s) 2 of 2 not given")
    assert _state(conn) == {}

    files = [("page", (f"followers-{n}.html", page, "text/html")) for n, page in enumerate(pages)]
    complete = client.post(URL, params={"kind": "followers"}, files=files)
    assert complete.status_code == 200, complete.text
    body = complete.json()
    assert (body["complete"], body["documents"], body["recorded"]) == (True, 2, 5)
    assert (body["added"], body["removed"], body["baseline"]) == (0, 0, True)
    assert _state(conn) == dict.fromkeys(names, True)


def test_pages_without_a_count_are_complete_only_as_the_stats_api_counts(
    client: TestClient[Litestar], conn: psycopg.Connection[Any], db_url: str
) -> None:
    pages, names = _pages(followers=5, page_size=3, count_shown=False)
    files = [("page", (f"followers-{n}.html", page, "text/html")) for n, page in enumerate(pages)]
    store_stats_count(db_url, "owner", 8)  # three more than the pages list
    partial = client.post(URL, params={"kind": "followers"}, files=files)
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert (body["complete"], body["recorded"], body["added"]) == (False, 5, None)
    assert body["reason"].startswith(
        "partial: the followers page shows no count and the Stats API's count (8, observed at "
    )
    assert body["reason"].endswith(
        ") does not match the 5 names read (tolerance 0); follow state unchanged"
    )
    assert _state(conn) == {}

    store_stats_count(db_url, "owner", 5)
    complete = client.post(URL, params={"kind": "followers"}, files=files)
    assert complete.status_code == 200, complete.text
    body = complete.json()
    assert (body["complete"], body["reason"]) == (
        True,
        "complete: 5 followers, as the Stats API counts",
    )
    assert (body["added"], body["removed"], body["baseline"]) == (0, 0, True)
    assert _state(conn) == dict.fromkeys(names, True)


def test_bad_input_is_problem_details(client: TestClient[Litestar]) -> None:
    def post(**kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = client.post(URL, **kwargs)
        assert response.headers["content-type"].startswith("application/problem+json")
        return response.status_code, response.json()

    html = {"Content-Type": "text/html"}
    status, problem = post(params={"kind": "following"}, content="<p>hello</p>", headers=html)
    assert (status, problem["field"]) == (400, "body")
    assert "not a followed-cams page" in problem["detail"]

    status, problem = post(params={"kind": "everything"}, content="<p>x</p>", headers=html)
    assert (status, problem["field"]) == (400, "kind")

    status, problem = post(
        params={"kind": "following"}, content="{}", headers={"Content-Type": "application/json"}
    )
    assert (status, problem["field"]) == (415, "body")

    status, problem = post(params={"kind": "following"}, content="", headers=html)
    assert (status, problem["field"]) == (400, "body")


def test_saved_at_and_the_mass_change_guard(
    client: TestClient[Litestar], conn: psycopg.Connection[Any]
) -> None:
    def post(page: str, **params: Any) -> tuple[int, dict[str, Any]]:
        response = client.post(
            URL,
            params={"kind": "followers", **params},
            content=page,
            headers={"Content-Type": "text/html"},
        )
        return response.status_code, response.json()

    ten, names = _pages(followers=10, page_size=50)
    status, body = post(ten[0], saved_at="2026-03-10T12:00:00Z")
    assert (status, body["baseline"]) == (200, True), body
    checked = conn.execute("SELECT max(follower_checked_at) FROM persons").fetchone()
    assert checked == (dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC),)  # saved_at, not now

    two, _ = _pages(followers=2, page_size=50)
    status, problem = post(two[0], saved_at="2026-03-01T00:00:00Z")  # before that check
    assert (status, problem["field"]) == (409, "saved_at")
    assert problem["detail"] == (
        "the page was saved at 2026-03-01T00:00:00Z, before the last check of the followers "
        "list at 2026-03-10T12:00:00Z: importing it would roll follow state back; save the "
        "page again"
    )
    status, problem = post(two[0], saved_at="2999-01-01T00:00:00Z")
    assert (status, problem["field"]) == (400, "saved_at")
    status, problem = post(two[0], saved_at="2026-03-11T00:00:00")  # no time zone
    assert (status, problem["field"]) == (400, "saved_at")

    status, problem = post(two[0], saved_at="2026-03-11T00:00:00Z")  # 8 of 10 would go
    assert (status, problem["field"]) == (409, "confirm_loss")
    assert problem["detail"] == (
        "followers: 8 of 10 would be marked lost (80 % > 20 %, more than 5); held, not "
        "concluded; send confirm_loss=true to confirm"
    )
    assert _state(conn) == dict.fromkeys(names, True)

    status, body = post(two[0], saved_at="2026-03-11T00:00:00Z", confirm_loss="true")
    assert status == 200, body
    assert (body["added"], body["removed"]) == (0, 8)
    assert _state(conn) == {name: name in names[:2] for name in names}
