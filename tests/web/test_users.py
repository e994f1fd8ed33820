"""The Users page over HTTP: the list's filters and sort from the URL, paging, source colours."""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.watch_list import set_watch
from storage.writers import write_affiliate_poll, write_cbhours_live
from tests.factories import AUTH, live, room

ROW = re.compile(r'<tr data-username="([^"]+)"')


@pytest.fixture
def people(db_url: str) -> None:
    now = dt.datetime.now(dt.UTC)  # recent when the test reads it, however late it runs
    with psycopg.connect(db_url, autocommit=True) as conn:
        write_cbhours_live(conn, [live("erin", rank=7, grank=70)], observed_at=now)
        write_affiliate_poll(
            conn,
            [
                room("alice", tags=["tease", "lovense"], num_followers=900, display_name="Al"),
                room("bob", gender="m", tags=["gaming"], num_followers=500),
                room("erin", gender="c", tags=["lovense"], num_followers=300),
            ],
            observed_at=now,
        )
        set_watch(conn, ["bob"], True)


def rows(client: TestClient[Litestar], query: str = "") -> list[str]:
    answer = client.get(f"/users{query}")
    assert answer.status_code == 200, answer.text
    return ROW.findall(answer.text)


@pytest.mark.usefixtures("people")
def test_filters_and_sort_come_from_the_url(client: TestClient[Litestar]) -> None:
    assert rows(client) == ["alice", "bob", "erin"]  # by followers
    assert rows(client, "?tag=lovense") == ["alice", "erin"]
    assert rows(client, "?tag=LOVENSE&gender=c") == ["erin"]
    assert rows(client, "?watch=true") == ["bob"]
    assert rows(client, "?watch=false") == ["alice", "erin"]
    assert rows(client, "?q=al") == ["alice"]
    assert rows(client, "?sort=rank") == ["erin", "alice", "bob"]  # ranked first, nulls last
    # Empty fields, as a submitted filter form sends them, mean "any".
    assert rows(client, "?q=&tag=&following=&gender=&sort=") == ["alice", "bob", "erin"]


@pytest.mark.usefixtures("people")
def test_the_page_lists_what_the_api_lists(client: TestClient[Litestar]) -> None:
    for query in ("", "?tag=lovense", "?sort=viewers", "?watch=true"):
        api = client.get(f"/api/v1/persons{query}", headers=AUTH).json()["items"]
        assert rows(client, query) == [item["username"] for item in api]


def test_cursor_paging_keeps_the_filters(client: TestClient[Litestar], db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        write_affiliate_poll(
            conn,
            [room(f"p{i:03}", tags=["x"], num_followers=1000 - i) for i in range(60)]
            + [room("other", tags=["y"], num_followers=5000)],
            observed_at=dt.datetime.now(dt.UTC),
        )
    first = client.get("/users?tag=x")
    assert ROW.findall(first.text) == [f"p{i:03}" for i in range(50)]
    found = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert found
    link = found.group(1).replace("&amp;", "&")
    assert "tag=x" in link and "cursor=" in link
    assert rows(client, link.removeprefix("/users")) == [f"p{i:03}" for i in range(50, 60)]


@pytest.mark.usefixtures("people")
def test_each_value_carries_its_source(client: TestClient[Litestar]) -> None:
    html = client.get("/users?q=erin").text
    detail = client.get("/api/v1/persons/erin", headers=AUTH).json()["sources"]
    for field in ("display_name", "followers", "rank", "grank", "viewers"):
        cell = re.search(rf'data-field="{field}"><span class="v ([^"]*)" title="([^"]*)" '
                         rf'data-source="([^"]*)"', html)  # fmt: skip
        assert cell, field
        source = detail[field]["source"]
        assert cell.group(3) == source
        shown = "stale" if detail[field]["stale"] else source
        assert cell.group(1).strip() == f"src-{shown}"
    # rank comes from CBHours only; the list's followers from CBHours before Affiliate
    assert detail["rank"]["source"] == "cbhours"
    assert 'class="legend"' in html
