"""``PUT /persons/{username}/watch``, the ``watch`` filter of ``GET /persons``, and watched
persons as persons of interest."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from roomwatch.config import load_config
from storage.targets import cbhours_activity_targets, cbhours_live_targets, thumbnail_targets
from storage.writers import write_affiliate_poll
from tests.factories import room

Client = TestClient[Litestar]
T = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


@pytest.fixture
def people(conn: psycopg.Connection[Any]) -> None:
    write_affiliate_poll(conn, [room("alice"), room("bob")], observed_at=T)


def _put(client: Client, username: str, body: Any) -> Any:
    return client.put(f"/api/v1/persons/{username}/watch", json=body)


def _listed(client: Client, **params: Any) -> set[str]:
    response = client.get("/api/v1/persons", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return {item["username"] for item in response.json()["items"]}


def _summary_watch(conn: psycopg.Connection[Any], username: str) -> Any:
    row = conn.execute(
        "SELECT s.watch FROM person_summary s JOIN persons p USING (person_id) "
        "WHERE p.username = %s",
        [username],
    ).fetchone()
    return row[0] if row else None


@pytest.mark.usefixtures("people")
def test_watch_and_unwatch(client: Client, conn: psycopg.Connection[Any]) -> None:
    # Read first, so the person cache holds alice unwatched: the change must not hide behind it.
    assert client.get("/api/v1/persons/alice").json()["watch"] is False
    response = _put(client, "Alice", {"watch": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"username": "alice", "watch": True}
    assert client.get("/api/v1/persons/alice").json()["watch"] is True
    assert _summary_watch(conn, "alice") is True
    assert _listed(client, watch="true") == {"alice"}
    assert _listed(client, watch="false") == {"bob"}
    assert [
        i["watch"] for i in client.get("/api/v1/persons", params={"q": "ali"}).json()["items"]
    ] == [True]

    assert _put(client, "alice", {"watch": True}).json() == {"username": "alice", "watch": True}
    assert _put(client, "alice", {"watch": False}).json() == {"username": "alice", "watch": False}
    assert client.get("/api/v1/persons/alice").json()["watch"] is False
    assert _summary_watch(conn, "alice") is False
    assert _listed(client, watch="true") == set()
    assert _listed(client, watch="false") == {"alice", "bob"}


def test_watching_a_new_username_creates_the_person(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    assert client.get("/api/v1/persons/newcomer_1").status_code == 404
    assert _put(client, "NewComer_1", {"watch": True}).json() == {
        "username": "newcomer_1",
        "watch": True,
    }
    detail = client.get("/api/v1/persons/newcomer_1")
    assert detail.status_code == 200
    assert detail.json()["watch"] is True
    assert _summary_watch(conn, "newcomer_1") is True
    assert _listed(client, watch="true") == {"newcomer_1"}


def test_unwatching_a_new_username_creates_nobody(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    assert _put(client, "stranger", {"watch": False}).json() == {
        "username": "stranger",
        "watch": False,
    }
    assert conn.execute("SELECT count(*) FROM persons").fetchone() == (0,)


@pytest.mark.parametrize(
    ("username", "body", "field"),
    [
        ("a", {"watch": True}, "username"),  # too short
        ("x" * 65, {"watch": True}, "username"),
        ("bad%20name", {"watch": True}, "username"),
        ("%20alice", {"watch": True}, "username"),
        ("al.ice", {"watch": True}, "username"),
        ("alice", {}, "watch"),
        ("alice", {"watch": "yes"}, "watch"),
        ("alice", {"watch": True, "also": 1}, "also"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(
    client: Client, conn: psycopg.Connection[Any], username: str, body: Any, field: str
) -> None:
    response = _put(client, username, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert conn.execute("SELECT count(*) FROM persons").fetchone() == (0,)


def test_not_json_is_a_problem(client: Client) -> None:
    response = client.put("/api/v1/persons/alice/watch", content=b"watch=true")
    assert response.status_code == 400


def test_bearer_required(client: Client) -> None:
    response = client.put(
        "/api/v1/persons/alice/watch", json={"watch": True}, headers={"Authorization": ""}
    )
    assert response.status_code == 401


@pytest.mark.usefixtures("people")
def test_watched_persons_are_persons_of_interest_by_default(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    config = load_config({})
    assert "watch" in config.cbhours.targets
    assert "watch" in config.images.persons
    assert _put(client, "alice", {"watch": True}).status_code == 200
    assert _put(client, "carol", {"watch": True}).status_code == 200  # never seen before
    conn.execute("UPDATE persons SET has_cbhours_trophy = true WHERE username = 'alice'")
    recheck = config.cbhours.trophy_recheck_days
    assert cbhours_live_targets(conn, config.cbhours.targets, recheck) == ["alice", "carol"]
    assert cbhours_activity_targets(conn, config.cbhours.targets) == ["alice"]
    hours = config.images.min_interval_hours
    assert thumbnail_targets(conn, config.images.persons, hours) == ["alice", "carol"]


def _muted(conn: psycopg.Connection[Any]) -> dict[str, bool]:
    rows = conn.execute("SELECT username, alerts_muted FROM persons ORDER BY username")
    return dict(rows.fetchall())


@pytest.mark.usefixtures("people")
def test_mute_and_unmute(client: Client, conn: psycopg.Connection[Any]) -> None:
    response = client.put("/api/v1/persons/Alice/mute", json={"mute": True})
    assert response.status_code == 200, response.text
    assert response.json() == {"username": "alice", "mute": True}
    assert _muted(conn) == {"alice": True, "bob": False}
    assert client.get("/api/v1/persons/alice").json()["watch"] is False  # watch untouched
    off = client.put("/api/v1/persons/alice/mute", json={"mute": False})
    assert off.json() == {"username": "alice", "mute": False}
    assert _muted(conn) == {"alice": False, "bob": False}
    # A username never seen: muting creates the person (the mute holds when they appear).
    assert client.put("/api/v1/persons/later_one/mute", json={"mute": True}).status_code == 200
    assert client.put("/api/v1/persons/nobody_yet/mute", json={"mute": False}).status_code == 200
    assert _muted(conn) == {"alice": False, "bob": False, "later_one": True}


@pytest.mark.parametrize(
    ("username", "body", "field"),
    [("a", {"mute": True}, "username"), ("alice", {"mute": "yes"}, "mute"),
     ("alice", {"watch": True}, "watch")],
)  # fmt: skip
def test_bad_mute_input_is_a_problem_naming_the_field(
    client: Client, conn: psycopg.Connection[Any], username: str, body: Any, field: str
) -> None:
    response = client.put(f"/api/v1/persons/{username}/mute", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert conn.execute("SELECT count(*) FROM persons").fetchone() == (0,)
    unauthorised = client.put(
        "/api/v1/persons/alice/mute", json={"mute": True}, headers={"Authorization": ""}
    )
    assert unauthorised.status_code == 401
