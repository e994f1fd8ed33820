"""Follow durations in ``GET /persons`` rows and ``GET /persons/{username}``, from real events.

Follow state is set the way crawls and imports set it (``reconcile``): the first complete check
of a list is a baseline without events, so a follow older than it has no known start.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.follow_state import reconcile
from storage.writers import write_affiliate_poll
from tests.factories import room

Client = TestClient[Litestar]
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
T1, T2, T3 = (T0 + dt.timedelta(days=n) for n in (1, 2, 3))
DURATIONS = ("following_since", "unfollowed_at", "follower_since", "lost_follower_at")
NAMES = ("alice", "bob", "carol", "dave", "erin", "finn")


def _check(conn: psycopg.Connection[Any], relation: Any, names: set[str], at: dt.datetime) -> None:
    reconcile(
        conn, relation, names, account="owner", checked_at=at, source="followers", confirm_loss=True
    )


@pytest.fixture
def follows(conn: psycopg.Connection[Any]) -> None:
    """alice followed since before the baseline; bob followed, unfollowed, followed again;
    carol followed then unfollowed; dave a follower lost; erin a new follower; finn nothing."""
    write_affiliate_poll(conn, [room(name) for name in NAMES], observed_at=T0)
    _check(conn, "following", {"alice", "bob"}, T0)  # baseline: no events
    _check(conn, "following", {"alice", "carol"}, T1)  # carol followed, bob unfollowed
    _check(conn, "following", {"alice", "bob"}, T2)  # bob followed again, carol unfollowed
    _check(conn, "follower", {"dave"}, T0)  # baseline
    _check(conn, "follower", {"dave", "erin"}, T1)  # erin new
    _check(conn, "follower", {"erin"}, T2)  # dave lost


EXPECTED: dict[str, tuple[dt.datetime | None, ...]] = {
    # following_since, unfollowed_at, follower_since, lost_follower_at
    "alice": (None, None, None, None),  # followed, but since before anything was known
    "bob": (T2, None, None, None),  # the newest follow counts; the unfollow between is over
    "carol": (None, T2, None, None),
    "dave": (None, None, None, T2),
    "erin": (None, None, T1, None),
    "finn": (None, None, None, None),
}


def _durations(item: dict[str, Any]) -> tuple[dt.datetime | None, ...]:
    return tuple(
        dt.datetime.fromisoformat(item[key]) if item[key] is not None else None for key in DURATIONS
    )


@pytest.mark.usefixtures("follows")
def test_list_rows_carry_durations(client: Client) -> None:
    response = client.get("/api/v1/persons", params={"limit": 200})
    assert response.status_code == 200, response.text
    got = {item["username"]: _durations(item) for item in response.json()["items"]}
    assert got == EXPECTED


@pytest.mark.usefixtures("follows")
@pytest.mark.parametrize("sort", ["followers", "last_seen", "rank"])
def test_durations_on_every_page(client: Client, sort: str) -> None:
    """Pages of one row: the durations belong to the row they are on, whatever the order."""
    got: dict[str, tuple[dt.datetime | None, ...]] = {}
    params: dict[str, Any] = {"limit": 1, "sort": sort}
    for _ in range(len(NAMES) + 1):
        page = client.get("/api/v1/persons", params=params).json()
        got |= {item["username"]: _durations(item) for item in page["items"]}
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert got == EXPECTED


@pytest.mark.usefixtures("follows")
def test_filtered_list_keeps_durations(client: Client) -> None:
    items = client.get("/api/v1/persons", params={"following": "false"}).json()["items"]
    assert {item["username"]: _durations(item) for item in items} == {
        name: EXPECTED[name] for name in ("carol", "dave", "erin", "finn")
    }


@pytest.mark.usefixtures("follows")
@pytest.mark.parametrize("name", NAMES)
def test_detail_carries_durations(client: Client, name: str) -> None:
    response = client.get(f"/api/v1/persons/{name.upper()}")
    assert response.status_code == 200, response.text
    assert _durations(response.json()) == EXPECTED[name]


@pytest.mark.usefixtures("follows")
def test_detail_sees_a_new_event(client: Client, conn: psycopg.Connection[Any]) -> None:
    """The cached detail is dropped when a check writes an event (the persons row changes)."""
    assert _durations(client.get("/api/v1/persons/bob").json())[:2] == (T2, None)
    _check(conn, "following", {"alice"}, T3)
    deadline = time.monotonic() + 5
    while _durations(client.get("/api/v1/persons/bob").json())[:2] != (None, T3):
        assert time.monotonic() < deadline, "the detail never showed the unfollow"
        time.sleep(0.05)


def test_schema_names_the_durations(client: Client) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    for name in ("PersonSummary", "PersonDetailWithImage"):
        assert set(DURATIONS) <= set(schemas[name]["properties"]), name
