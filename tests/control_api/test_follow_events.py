"""``GET /follow-events``: newest first, kind and since filters, cursor paging through ties."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.writers import write_affiliate_poll
from tests.factories import room

Client = TestClient[Litestar]
T = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

# (username, kind, minutes after T); two events share a time so paging must break the tie.
EVENTS = [
    ("alice", "followed", 0),
    ("bob", "new_follower", 10),
    ("carol", "lost_follower", 10),
    ("alice", "unfollowed", 20),
    ("bob", "lost_follower", 30),
]


@pytest.fixture
def events(conn: psycopg.Connection[Any]) -> int:
    """The events above, recorded by one crawl job; returns the job id."""
    write_affiliate_poll(conn, [room(n) for n in ("alice", "bob", "carol")], observed_at=T)
    job_id: int = conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger) VALUES ('followers', 'cli') RETURNING job_id"
    ).fetchone()[0]  # type: ignore[index]
    conn.execute("INSERT INTO accounts (account) VALUES ('owner')")
    for username, kind, minutes in EVENTS:
        conn.execute(
            "INSERT INTO follow_events (account, person_id, kind, occurred_at, source, job_id) "
            "SELECT 'owner', person_id, %s, %s, 'followers', %s FROM persons WHERE username = %s",
            [kind, T + dt.timedelta(minutes=minutes), job_id, username],
        )
    return job_id


def listed(client: Client, **params: Any) -> list[tuple[str, str, int]]:
    response = client.get("/api/v1/follow-events", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [
        (
            e["username"],
            e["kind"],
            int((dt.datetime.fromisoformat(e["occurred_at"]) - T).total_seconds() // 60),
        )
        for e in response.json()["items"]
    ]


def test_all_newest_first(client: Client, events: int) -> None:
    got = listed(client)
    assert got == [
        ("bob", "lost_follower", 30),
        ("alice", "unfollowed", 20),
        ("carol", "lost_follower", 10),  # same time as bob's: the later event first
        ("bob", "new_follower", 10),
        ("alice", "followed", 0),
    ]
    item = client.get("/api/v1/follow-events", params={"limit": 1}).json()["items"][0]
    assert item["job_id"] == events
    assert item["source"] == "followers"


@pytest.mark.usefixtures("events")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "lost_follower"}, [("bob", 30), ("carol", 10)]),
        ({"kind": "followed"}, [("alice", 0)]),
        ({"since": (T + dt.timedelta(minutes=20)).isoformat()}, [("bob", 30), ("alice", 20)]),
        ({"since": "2025-03-01T12:10:00", "kind": "new_follower"}, [("bob", 10)]),  # naive: UTC
    ],
)
def test_filters(client: Client, params: dict[str, str], expected: list[tuple[str, int]]) -> None:
    assert [(name, minutes) for name, _, minutes in listed(client, **params)] == expected


@pytest.mark.usefixtures("events")
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_cursor_paging(client: Client, page_size: int) -> None:
    seen: list[tuple[str, str, int]] = []
    params: dict[str, Any] = {"limit": page_size}
    for _ in range(10):
        page = client.get("/api/v1/follow-events", params=params).json()
        seen += [(e["username"], e["kind"], 0) for e in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [(name, kind, 0) for name, kind, _ in listed(client)]


def test_empty(client: Client) -> None:
    assert client.get("/api/v1/follow-events").json() == {"items": [], "next_cursor": None}
