"""``GET /persons`` and ``GET /persons/{username}``: filters, sorts, cursor paging, provenance."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.writers import write_affiliate_poll, write_cbhours_live
from tests.factories import live, room
from tests.storage.merge_cases import observe

Client = TestClient[Litestar]
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
RECENT = NOW - dt.timedelta(minutes=1)
OLD = NOW - dt.timedelta(hours=3)


@pytest.fixture
def people(conn: psycopg.Connection[Any]) -> None:
    """Six persons seen by the Affiliate feed, CBHours or both (see each line)."""
    # erin was tagged "tease" by CBHours hours ago; the Affiliate feed now says "lovense" only.
    write_cbhours_live(conn, [live("erin", tags=["tease"], rank=100)], observed_at=OLD)
    write_affiliate_poll(
        conn,
        [
            room(
                "alice",
                tags=["tease", "lovense"],
                num_followers=1000,
                num_users=50,
                display_name="Alice Wonder",
            ),
            room(
                "bob",
                gender="m",
                tags=["gaming"],
                num_followers=500,
                num_users=10,
                display_name="Bobby_Tables",
            ),
            room("erin", gender="c", tags=["lovense"], num_followers=300, num_users=30),
            room("finn", gender="s", tags=[], num_followers=300, num_users=5),
        ],
        observed_at=RECENT,
    )
    write_cbhours_live(
        conn,
        [
            live("alice", rank=10, grank=5, followers=1100, viewers=55, tags=["tease"]),
            live("carol", rank=3, grank=2, followers=2000, viewers=70, tags=["tease"]),
            live("dave", online=False),
        ],
        observed_at=RECENT,
    )
    conn.execute("UPDATE persons SET following = true WHERE username IN ('alice', 'carol')")
    conn.execute("UPDATE persons SET following = false WHERE username = 'bob'")
    conn.execute("UPDATE persons SET follower = true WHERE username = 'bob'")


def names(client: Client, **params: Any) -> list[str]:
    response = client.get("/api/v1/persons", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [item["username"] for item in response.json()["items"]]


def _paged_usernames(client: Client, params: dict[str, Any], pages: int = 20) -> list[str]:
    """Every username of ``GET /persons`` with ``params``, following its cursors."""
    seen: list[str] = []
    cursor = None
    for _ in range(pages):
        page = client.get(
            "/api/v1/persons", params={**params, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [item["username"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return seen


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"alice", "bob", "carol", "dave", "erin", "finn"}),
        ({"tag": "tease"}, {"alice", "carol"}),  # erin: only a stale source still says "tease"
        ({"tag": "LOVENSE"}, {"alice", "erin"}),
        ({"tag": "nobody-uses-this"}, set()),
        ({"q": "ali"}, {"alice"}),
        ({"q": "WONDER"}, {"alice"}),  # display name, any case
        ({"q": "y_t"}, {"bob"}),  # "_" is a literal, not a LIKE wildcard
        ({"q": "%"}, set()),
        ({"following": "true"}, {"alice", "carol"}),
        ({"following": "false"}, {"bob", "dave", "erin", "finn"}),  # false keeps the unknown
        ({"follower": "true"}, {"bob"}),
        ({"online": "true"}, {"alice", "bob", "carol", "erin", "finn"}),
        ({"online": "false"}, {"dave"}),
        ({"gender": "f"}, {"alice", "carol"}),  # carol's "Female" from CBHours is "f"
        ({"gender": "t"}, {"finn"}),  # the feed's "s" is stored as "t"
        ({"gender": "m", "follower": "true", "tag": "gaming"}, {"bob"}),
        ({"gender": "m", "following": "true"}, set()),
    ],
)
def test_list_filters(client: Client, params: dict[str, str], expected: set[str]) -> None:
    got = names(client, **params)
    assert set(got) == expected
    assert len(got) == len(set(got))


def test_tag_filter_means_merged_tags(client: Client, people: None) -> None:
    items = client.get("/api/v1/persons", params={"tag": "tease"}).json()["items"]
    assert all("tease" in item["tags"] for item in items)


_KEYS = {
    "followers": ("followers", True),
    "viewers": ("viewers", True),
    "rank": ("rank", False),
    "grank": ("grank", False),
    "last_seen": ("last_seen_online_at", True),
}


def _expected_order(items: list[dict[str, Any]], sort: str) -> list[str]:
    column, descending = _KEYS[sort]

    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        value = item[column]
        if value is None:
            return (1, 0, item["person_id"])
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value).timestamp()
        return (0, -value if descending else value, item["person_id"])

    return [item["username"] for item in sorted(items, key=key)]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("sort", list(_KEYS))
@pytest.mark.parametrize("page_size", [1, 2, 4])
def test_sort_and_cursor_paging(client: Client, sort: str, page_size: int) -> None:
    whole = client.get("/api/v1/persons", params={"sort": sort, "limit": 200}).json()
    assert whole["next_cursor"] is None
    assert [i["username"] for i in whole["items"]] == _expected_order(whole["items"], sort)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"sort": sort, "limit": page_size}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/persons", params=params).json()
        assert len(page["items"]) <= page_size
        seen += [item["username"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["username"] for i in whole["items"]]  # no duplicate, no gap


def test_sort_values(client: Client, people: None) -> None:
    assert names(client, sort="followers")[:3] == ["carol", "alice", "bob"]
    assert names(client, sort="followers")[-1] == "dave"  # no follower count: NULLS LAST
    assert names(client, sort="viewers")[:2] == ["carol", "alice"]
    assert names(client, sort="rank")[:3] == ["carol", "alice", "erin"]  # erin: old but rank
    assert names(client, sort="grank")[:2] == ["carol", "alice"]


def test_cursor_paging_with_filters(client: Client, people: None) -> None:
    first = client.get("/api/v1/persons", params={"online": "true", "limit": 2}).json()
    second = client.get(
        "/api/v1/persons", params={"online": "true", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    got = [i["username"] for i in first["items"] + second["items"]]
    assert got == ["carol", "alice", "bob", "erin"]


def test_empty_list(client: Client) -> None:
    assert client.get("/api/v1/persons").json() == {"items": [], "next_cursor": None}


def test_detail_sources(client: Client, people: None) -> None:
    response = client.get("/api/v1/persons/Alice")
    assert response.status_code == 200
    alice = response.json()
    assert alice["username"] == "alice"
    assert alice["display_name"] == "Alice Wonder"
    assert alice["followers"] == 1100  # CBHours is the authority for follower counts
    assert alice["viewers"] == 50  # a recent Affiliate poll is the authority for live status
    assert alice["tags"] == ["tease", "lovense"]
    assert (alice["rank"], alice["grank"]) == (10, 5)
    assert alice["following"] is True
    sources = alice["sources"]
    assert set(sources) == {
        "display_name", "age", "birthday", "gender", "location", "country", "spoken_languages",
        "online", "current_show", "viewers", "subject", "followers", "tags", "image_url",
        "rank", "grank",
    }  # fmt: skip
    expected = {
        "display_name": ("affiliate", None),
        "gender": ("affiliate", None),
        "online": ("affiliate", False),
        "viewers": ("affiliate", False),
        "followers": ("cbhours", False),
        "tags": ("affiliate", False),
        "image_url": ("affiliate", False),
        "rank": ("cbhours", None),
        "grank": ("cbhours", None),
    }
    for field, (source, stale) in expected.items():
        assert sources[field]["source"] == source, field
        assert sources[field]["stale"] is stale, field
        assert dt.datetime.fromisoformat(sources[field]["observed_at"]) == RECENT, field


def test_detail_of_a_cbhours_only_person(client: Client, people: None) -> None:
    carol = client.get("/api/v1/persons/carol").json()
    assert carol["gender"] == "f"
    assert carol["sources"]["gender"]["source"] == "cbhours"
    assert carol["display_name"] is None
    assert carol["sources"]["display_name"] == {"source": None, "observed_at": None, "stale": None}
    erin = client.get("/api/v1/persons/erin").json()
    assert erin["rank"] == 100
    assert dt.datetime.fromisoformat(erin["sources"]["rank"]["observed_at"]) == OLD


def test_detail_stale_live_status(client: Client, conn: psycopg.Connection[Any]) -> None:
    write_affiliate_poll(conn, [room("gina", num_users=9)], observed_at=OLD)
    gina = client.get("/api/v1/persons/gina").json()
    assert gina["viewers"] == 9
    assert gina["sources"]["viewers"] == {
        "source": "affiliate",
        "observed_at": gina["sources"]["viewers"]["observed_at"],
        "stale": True,
    }


def test_unknown_person_is_404(client: Client) -> None:
    response = client.get("/api/v1/persons/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
    assert "nobody" in response.json()["detail"]
    assert response.json()["field"] == "username"


def test_tag_pages_by_followers_hold_every_tagged_person_once(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    counts = {"p0": 50, "p1": 50, "p2": 40, "p3": None, "p4": 30, "p5": None, "p6": 50, "x": 99}
    for name, count in counts.items():
        row = conn.execute(
            "INSERT INTO persons (username) VALUES (%s) RETURNING person_id", [name]
        ).fetchone()
        assert row is not None
        fields: dict[str, Any] = {"tags": ["other"] if name == "x" else ["shared", name]}
        if count is not None:
            fields["followers"] = count
        observe(conn, row[0], "affiliate", dt.timedelta(minutes=1), fields, now)
    expected = ["p0", "p1", "p6", "p2", "p4", "p3", "p5"]  # ties and NULLs by person id
    assert _paged_usernames(client, {"tag": "shared", "sort": "followers", "limit": 2}) == expected


@pytest.mark.parametrize("tag", [None, "shared"])
@pytest.mark.parametrize(
    ("sort", "field", "counts"),
    [
        # Every count of each list in one bucket of its sort key (checked below): the list's
        # index orders by the key only, so this order is the exact counts' alone.
        ("followers", "followers", [1001, 1333, 1200, None, 1200, 1002, 1333, 1100]),
        ("viewers", "viewers", [101, 177, 150, 177, 100, 102, 150, 120]),
    ],
)
@pytest.mark.parametrize("page_size", [1, 3, 50])
def test_counts_of_one_sort_bucket_are_listed_in_exact_order(
    client: Client,
    conn: psycopg.Connection[Any],
    tag: str | None,
    sort: str,
    field: str,
    counts: list[int | None],
    page_size: int,
) -> None:
    now = dt.datetime.now(dt.UTC)
    known = [c for c in counts if c is not None]
    buckets = conn.execute(
        f"SELECT DISTINCT roomwatch_{sort}_key(c) FROM unnest(%s::integer[]) c", [known]
    ).fetchall()
    assert len(buckets) == 1, f"{known} are not one bucket of {sort}: {buckets}"
    for n, count in enumerate(counts):
        row = conn.execute(
            "INSERT INTO persons (username) VALUES (%s) RETURNING person_id", [f"b{n}"]
        ).fetchone()
        assert row is not None
        fields: dict[str, Any] = {"tags": ["shared"], "online": True}
        if count is not None:
            fields[field] = count
        observe(conn, row[0], "affiliate", dt.timedelta(minutes=1), fields, now)
    # Counts descending, ties by person id (the order inserted), no count last.
    expected = [
        f"b{n}"
        for n, _ in sorted(enumerate(counts), key=lambda nc: (nc[1] is None, -(nc[1] or 0), nc[0]))
    ]
    params: dict[str, Any] = {"sort": sort, "limit": page_size}
    if tag:
        params["tag"] = tag
    assert _paged_usernames(client, params) == expected
