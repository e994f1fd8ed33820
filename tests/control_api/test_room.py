"""The ``/room/*`` routes over rows stored in the contract's tables (``room_events``,
``room_stats``): the feed's order, filters and cursor, the Stats series, and the derived reads
(tippers, visitors, broadcasts) with the rules storage/room_figures.py documents; the account
comes from the configured URLs, and without them every route says which settings to set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.app import create_app
from roomwatch.config import load_config
from storage.room_figures import MAX_VISIT
from tests.factories import AUTH, TOKEN
from tests.support import insert_room_events, insert_room_stats, room_event

Client = TestClient[Litestar]
OWNER = "owner_one"
EVENTS_TOKEN = "evtok1234567890abcdefghijklmnop"
STATS_TOKEN = "sttok1234567890abcdefghijklmnop"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
T = NOW - dt.timedelta(days=2)  # the broadcasts and visits below happen after this
MIN = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _now() -> None:
    """NOW is when each test starts, not when the module was collected: a parallel run may
    reach a test minutes later, and "in the room now" is read against the database's clock."""
    global NOW, T
    NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
    T = NOW - dt.timedelta(days=2)


def _config(tmp_path: Path, **env: str) -> Any:
    return load_config({"ROOMWATCH_DATA_DIR": str(tmp_path / "data"), **env})


@pytest.fixture
def room_client(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The API of an install whose Events and Stats URLs name :data:`OWNER`."""
    config = _config(
        tmp_path,
        ROOMWATCH_EVENTS_URL=f"https://eventsapi.chaturbate.com/events/{OWNER}/{EVENTS_TOKEN}/",
        ROOMWATCH_STATS_URL=f"https://chaturbate.com/statsapi/?username={OWNER}&token={STATS_TOKEN}",
    )
    with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
        client.headers.update(AUTH)
        yield client


def _all_pages(client: Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        body = client.get(path, params=params).raise_for_status().json()
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]


def _problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


@pytest.fixture
def feed(conn: psycopg.Connection[Any]) -> list[str]:
    """Events of the owner over two months (two partitions), twelve in one millisecond (ids
    ``-0`` to ``-11``: ``-10`` comes after ``-9``), and one of another account; the owner's
    ids, newest first."""
    events = [
        room_event("chatMessage", NOW - i * 37 * MIN, username=f"user{i % 4}", message=f"hi {i}")
        for i in range(1, 30)
    ]
    events.append(room_event("tip", NOW - 40 * dt.timedelta(days=1), username="old", tokens=5))
    burst = NOW - 5 * MIN
    events += [room_event("follow", burst, seq, username=f"fan{seq}") for seq in range(12)]
    insert_room_events(conn, OWNER, events)
    insert_room_events(conn, "someone_else", [room_event("tip", NOW - MIN, tokens=1)])
    ordered = sorted(events, key=lambda e: (e.occurred_at, int(e.event_id.split("-")[1])))
    return [e.event_id for e in reversed(ordered)]


@pytest.mark.parametrize("limit", [1, 7, 200])
def test_events_come_newest_first_and_every_page_resumes_where_the_last_ended(
    room_client: Client, feed: list[str], limit: int
) -> None:
    items = _all_pages(room_client, "/api/v1/room/events", limit=limit)
    assert [item["event_id"] for item in items] == feed
    assert "raw" not in items[0]


def test_events_filter_by_method_user_and_time(room_client: Client, feed: list[str]) -> None:
    def ids(**params: Any) -> list[str]:
        return [e["event_id"] for e in _all_pages(room_client, "/api/v1/room/events", **params)]

    follows = ids(method="follow")
    assert len(follows) == 12 and follows == [i for i in feed if i in follows]
    assert len(ids(method=["follow", "tip"])) == 13
    body = room_client.get("/api/v1/room/events", params={"username": "USER1"}).json()
    assert {e["username"] for e in body["items"]} == {"user1"}
    assert all(e["message"].startswith("hi ") for e in body["items"])
    since = (NOW - 60 * MIN).isoformat()
    until = (NOW - 4 * MIN).isoformat()
    windowed = room_client.get("/api/v1/room/events", params={"since": since, "until": until})
    times = [dt.datetime.fromisoformat(e["occurred_at"]) for e in windowed.json()["items"]]
    assert times and all(NOW - 60 * MIN <= t < NOW - 4 * MIN for t in times)
    assert len(times) == 12 + 1  # the burst, and the chat message 37 minutes ago


def test_the_account_parameter_reads_another_accounts_room(
    room_client: Client, feed: list[str]
) -> None:
    body = room_client.get("/api/v1/room/events", params={"account": "Someone_Else"}).json()
    assert body["account"] == "someone_else"
    assert [e["method"] for e in body["items"]] == ["tip"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/room/events", {"method": "dance"}, "method"),
        ("/api/v1/room/events", {"limit": "0"}, "limit"),
        ("/api/v1/room/events", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/v1/room/events", {"since": "yesterday"}, "since"),
        ("/api/v1/room/events", {"since": NOW.isoformat(), "until": T.isoformat()}, "since"),
        ("/api/v1/room/stats", {"from": NOW.isoformat(), "to": T.isoformat()}, "from"),
        ("/api/v1/room/tippers", {"to": "soon"}, "to"),
        ("/api/v1/room/visitors", {"sort": "loudest"}, "sort"),
        ("/api/v1/room/broadcasts", {"limit": "201"}, "limit"),
    ],
)
def test_bad_parameters_are_problems_that_name_them(
    room_client: Client, path: str, params: dict[str, str], field: str
) -> None:
    _problem(room_client.get(path, params=params), 400, field)


def test_a_cursor_of_another_list_is_refused(room_client: Client, feed: list[str]) -> None:
    cursor = room_client.get("/api/v1/room/events", params={"limit": 1}).json()["next_cursor"]
    body = _problem(
        room_client.get("/api/v1/room/broadcasts", params={"cursor": cursor}), 400, "cursor"
    )
    assert "room-events" in body["detail"]
    followers = room_client.get("/api/v1/follow-events", params={"cursor": cursor})
    _problem(followers, 400, "cursor")


@pytest.mark.parametrize(
    "path", ["/room/events", "/room/stats", "/room/tippers", "/room/visitors", "/room/broadcasts"]
)
def test_without_an_events_or_stats_url_every_route_says_what_to_set(
    client: Client, path: str
) -> None:
    body = _problem(client.get(f"/api/v1{path}"), 404, "account")
    assert "events.url" in body["detail"] and "stats.url" in body["detail"]


def test_with_urls_of_several_accounts_a_route_needs_the_account_named(
    db_url: str, tmp_path: Path, feed: list[str]
) -> None:
    second = f"https://eventsapi.chaturbate.com/events/studio_b/{EVENTS_TOKEN}x/"
    config = _config(
        tmp_path,
        ROOMWATCH_EVENTS_URL=(
            f"https://eventsapi.chaturbate.com/events/{OWNER}/{EVENTS_TOKEN}/ {second}"
        ),
    )
    with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
        client.headers.update(AUTH)
        body = _problem(client.get("/api/v1/room/events"), 400, "account")
        assert body["detail"] == f"account: several accounts: name one of {OWNER}, studio_b"
        named = client.get("/api/v1/room/events", params={"account": OWNER})
        assert named.status_code == 200 and named.json()["account"] == OWNER
        assert len(named.json()["items"]) > 0
        assert EVENTS_TOKEN not in body["detail"]


@pytest.mark.parametrize(
    "path", ["/room/events", "/room/stats", "/room/tippers", "/room/visitors", "/room/broadcasts"]
)
def test_the_routes_need_the_bearer_token_and_never_show_the_urls(
    room_client: Client, feed: list[str], path: str
) -> None:
    assert room_client.get(f"/api/v1{path}", headers={"Authorization": ""}).status_code == 401
    answer = room_client.get(f"/api/v1{path}")
    assert answer.status_code == 200
    for secret in (EVENTS_TOKEN, STATS_TOKEN, "eventsapi", "statsapi"):
        assert secret not in answer.text


def test_the_stats_series_is_the_range_oldest_first(
    room_client: Client, conn: psycopg.Connection[Any]
) -> None:
    for hours, followers in ((30, 90), (5, 100), (3, 104), (1, None)):
        insert_room_stats(
            conn,
            OWNER,
            NOW - dt.timedelta(hours=hours),
            num_followers=followers,
            num_viewers=hours * 10,
            token_balance=1000 + hours,
        )
    insert_room_stats(conn, "someone_else", NOW - dt.timedelta(hours=2), num_followers=1)
    body = room_client.get(
        "/api/v1/room/stats", params={"from": (NOW - dt.timedelta(hours=24)).isoformat()}
    ).json()
    assert body["account"] == OWNER
    assert [p["num_followers"] for p in body["points"]] == [100, 104, None]
    assert [p["token_balance"] for p in body["points"]] == [1005, 1003, 1001]
    default = room_client.get("/api/v1/room/stats").json()  # the last 7 days
    assert len(default["points"]) == 4


def test_tippers_total_per_person_with_anonymous_tips_apart(
    room_client: Client, conn: psycopg.Connection[Any]
) -> None:
    tips = [
        ("alice", 10, False),
        ("bob", 50, False),
        ("alice", 45, False),
        ("carol", 55, False),
        ("bob", 100, True),  # anonymous: bob's name, but not bob's tip
        (None, 7, None),  # names no one
        ("dave", 55, False),
    ]
    events = [
        room_event("tip", T + i * MIN, username=name, tokens=tokens, is_anon=anon)
        for i, (name, tokens, anon) in enumerate(tips)
    ]
    events.append(room_event("tip", NOW - 30 * dt.timedelta(days=1), username="eve", tokens=999))
    insert_room_events(conn, OWNER, events)
    body = room_client.get("/api/v1/room/tippers").json()
    rows = [(t["username"], t["tokens"], t["tips"]) for t in body["items"]]
    assert rows == [("dave", 55, 1), ("carol", 55, 1), ("alice", 55, 2), ("bob", 50, 1)]
    alice = next(t for t in body["items"] if t["username"] == "alice")
    assert dt.datetime.fromisoformat(alice["last_tip_at"]) == T + 2 * MIN
    assert body["totals"] == {
        "tips": 7,
        "tokens": 322,
        "anonymous_tips": 2,
        "anonymous_tokens": 107,
    }
    paged = _all_pages(room_client, "/api/v1/room/tippers", limit=1)
    assert [t["username"] for t in paged] == [r[0] for r in rows]
    month = room_client.get(
        "/api/v1/room/tippers", params={"from": (NOW - dt.timedelta(days=31)).isoformat()}
    ).json()
    assert month["items"][0]["username"] == "eve"


def test_visits_pair_each_enter_with_the_next_leave_within_the_rules(
    room_client: Client, conn: psycopg.Connection[Any]
) -> None:
    start = T
    events = [
        room_event("broadcastStart", start),
        # ann: two visits, 10 and 5 minutes.
        room_event("userEnter", start + 1 * MIN, username="ann"),
        room_event("userLeave", start + 11 * MIN, username="ann"),
        room_event("userEnter", start + 20 * MIN, username="ann"),
        room_event("userLeave", start + 25 * MIN, username="ann"),
        # ben: enters twice without leaving; the second enter ends the first visit (4 min),
        # the broadcast's stop ends the second (60 - 6 = 54 min); his late leave adds nothing.
        room_event("userEnter", start + 2 * MIN, username="ben"),
        room_event("userEnter", start + 6 * MIN, username="ben"),
        room_event("broadcastStop", start + 60 * MIN),
        room_event("userLeave", start + 90 * MIN, username="ben"),
        # cid: a leave with no enter counts nothing.
        room_event("userLeave", start + 3 * MIN, username="cid"),
        # dee: entered long ago in a broadcast that never stopped: capped.
        room_event("userEnter", NOW - MAX_VISIT - dt.timedelta(hours=5), username="dee"),
        # eva: in the room now (entered 10 minutes ago, no leave, no stop since).
        room_event("userEnter", NOW - 10 * MIN, username="eva"),
    ]
    insert_room_events(conn, OWNER, events)
    body = room_client.get("/api/v1/room/visitors", params={"sort": "time_spent"}).json()
    got = {v["username"]: v for v in body["items"]}
    assert set(got) == {"ann", "ben", "dee", "eva"}
    assert (got["ann"]["visits"], got["ann"]["seconds"]) == (2, 15 * 60)
    assert (got["ben"]["visits"], got["ben"]["seconds"]) == (2, 58 * 60)
    assert dt.datetime.fromisoformat(got["ben"]["last_seen"]) == start + 60 * MIN
    assert got["dee"]["seconds"] == MAX_VISIT.total_seconds()
    assert not got["dee"]["in_room"] and not got["ann"]["in_room"]
    assert got["eva"]["in_room"] and 10 * 60 <= got["eva"]["seconds"] < 15 * 60
    assert [v["username"] for v in body["items"]] == ["dee", "ben", "ann", "eva"]
    by_visits = _all_pages(room_client, "/api/v1/room/visitors", sort="visits", limit=1)
    assert [v["username"] for v in by_visits] == ["ben", "ann", "eva", "dee"]
    latest = _all_pages(room_client, "/api/v1/room/visitors", limit=3)
    assert latest[0]["username"] == "eva"
    # A range ending before the leave: the visit counts up to the range's end, still open then.
    early = room_client.get(
        "/api/v1/room/visitors",
        params={"from": start.isoformat(), "to": (start + 8 * MIN).isoformat()},
    ).json()
    ann = next(v for v in early["items"] if v["username"] == "ann")
    assert ann["seconds"] == 7 * 60 and ann["in_room"]


def test_broadcasts_are_sessions_with_their_figures(
    room_client: Client, conn: psycopg.Connection[Any]
) -> None:
    h = dt.timedelta(hours=1)
    events = [
        room_event("chatMessage", T - 2 * h, username="x"),  # the first event stored
        room_event("broadcastStop", T - h),  # no start seen: began at the first event
        room_event("broadcastStop", T - h + MIN),  # a stop after a stop: ignored
        # A full broadcast: 2 follows, 1 unfollow, 2 tips, 2 visitors.
        room_event("broadcastStart", T),
        room_event("userEnter", T + MIN, username="ann"),
        room_event("userEnter", T + 2 * MIN, username="ben"),
        room_event("userEnter", T + 3 * MIN, username="ann"),
        room_event("follow", T + 4 * MIN, username="ann"),
        room_event("follow", T + 5 * MIN, username="ben"),
        room_event("unfollow", T + 6 * MIN, username="cid"),
        room_event("tip", T + 7 * MIN, username="ann", tokens=20),
        room_event("tip", T + 8 * MIN, username="ben", tokens=5, is_anon=True),
        room_event("broadcastStop", T + h),
        room_event("follow", T + 2 * h, username="dee"),  # between broadcasts: in none
        # A start whose stop never came: it ends at the last event before the next start.
        room_event("broadcastStart", T + 3 * h),
        room_event("tip", T + 3 * h + 10 * MIN, username="eva", tokens=1),
        room_event("broadcastStart", T + 5 * h),  # ongoing
        room_event("follow", NOW - MIN, username="fay"),
    ]
    insert_room_events(conn, OWNER, events)
    items = _all_pages(room_client, "/api/v1/room/broadcasts", limit=2)
    assert len(items) == 4
    ongoing, unstopped, full, orphan = items
    assert ongoing["ongoing"] and ongoing["ended_at"] is None
    assert ongoing["followers_gained"] == 1
    assert abs(ongoing["seconds"] - (NOW - (T + 5 * h)).total_seconds()) < 120
    assert not unstopped["ongoing"]
    assert dt.datetime.fromisoformat(unstopped["ended_at"]) == T + 3 * h + 10 * MIN
    assert (unstopped["tips"], unstopped["tokens"]) == (1, 1)
    assert full["start_seen"] and full["seconds"] == 3600
    assert dt.datetime.fromisoformat(full["started_at"]) == T
    figures = {k: full[k] for k in ("followers_gained", "followers_lost", "tips", "tokens")}
    assert figures == {"followers_gained": 2, "followers_lost": 1, "tips": 2, "tokens": 25}
    assert full["visitors"] == 2
    assert not orphan["start_seen"]
    assert dt.datetime.fromisoformat(orphan["started_at"]) == T - 2 * h
    assert orphan["seconds"] == 3600
