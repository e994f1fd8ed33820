"""``/persons/{username}/history``, ``/activity`` and ``/snapshots``: contents and resolutions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.records import ActivitySegment, DailyActivity
from storage.writers import write_affiliate_poll, write_cbhours_activity, write_cbhours_live
from tests import factories
from tests.factories import live, room

Client = TestClient[Litestar]
# A whole hour a day ago, so hourly buckets are predictable and nothing is "recent".
H = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
M = dt.timedelta(minutes=1)


def at(minutes: int) -> dt.datetime:
    return H + minutes * M


def segment(minutes: int, rank: int, followers: int, viewers: int) -> ActivitySegment:
    """A sample of alice's, ``minutes`` after hour H."""
    return factories.segment("alice", at(minutes), rank, followers, viewers)


@pytest.fixture
def alice(conn: psycopg.Connection[Any]) -> None:
    """Three Affiliate polls, two CBHours live answers and CBHours activity around hour H."""
    for minutes, followers, viewers in [(10, 100, 5), (20, 110, 6), (70, 120, 7)]:
        poll = [room("alice", num_followers=followers, num_users=viewers), room("bob")]
        write_affiliate_poll(conn, poll, observed_at=at(minutes))
    write_cbhours_live(conn, [live("alice", rank=10, followers=130, viewers=8)], observed_at=at(15))
    write_cbhours_live(conn, [live("alice", rank=9, followers=131, viewers=9)], observed_at=at(25))
    write_cbhours_activity(
        conn,
        [segment(3, 12, 125, 3), segment(6, 11, 126, 4), segment(-5 * 24 * 60, 50, 1, 1)],
        [
            DailyActivity(username="alice", day=H.date(), online_minutes=33, tzo=0),
            DailyActivity(
                username="alice", day=H.date() - dt.timedelta(days=10), online_minutes=5, tzo=0
            ),
        ],
        observed_at=at(30),
    )


def history(client: Client, metric: str, start: dt.datetime, end: dt.datetime, **extra: str) -> Any:
    params = {"metric": metric, "from": start.isoformat(), "to": end.isoformat(), **extra}
    response = client.get("/api/v1/persons/alice/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def points(body: Any) -> list[tuple[dt.datetime, int, str]]:
    return [(dt.datetime.fromisoformat(p["at"]), p["value"], p["source"]) for p in body["points"]]


@pytest.mark.usefixtures("alice")
def test_raw_followers_from_every_source(client: Client) -> None:
    body = history(client, "followers", H, at(120))
    assert body["resolution"] == "raw"  # auto: two hours is raw
    assert body["metric"] == "followers"
    assert points(body) == [
        (at(3), 125, "cbhours"),
        (at(6), 126, "cbhours"),
        (at(10), 100, "affiliate"),
        (at(15), 130, "cbhours"),
        (at(20), 110, "affiliate"),
        (at(25), 131, "cbhours"),
        (at(70), 120, "affiliate"),
    ]


@pytest.mark.usefixtures("alice")
def test_raw_range_is_half_open(client: Client) -> None:
    got = points(history(client, "viewers", at(10), at(20)))
    assert got == [(at(10), 5, "affiliate"), (at(15), 8, "cbhours")]


@pytest.mark.usefixtures("alice")
def test_rank_is_cbhours_only(client: Client) -> None:
    got = points(history(client, "rank", H, at(120)))
    assert got == [(at(3), 12, "cbhours"), (at(6), 11, "cbhours"), (at(15), 10, "cbhours"),
                   (at(25), 9, "cbhours")]  # fmt: skip
    grank = points(history(client, "grank", H, at(120)))
    assert [value for _, value, _ in grank] == [6, 5, 50, 50]


@pytest.mark.usefixtures("alice")
def test_hourly_resolution(client: Client) -> None:
    body = history(client, "followers", H - dt.timedelta(days=3), at(120))
    assert body["resolution"] == "hour"  # auto: longer than two days
    assert points(body) == [
        (H, 110, "affiliate"),  # the last value of the hour (rollup)
        (H, 131, "cbhours"),
        (at(60), 120, "affiliate"),
    ]
    viewers = points(history(client, "viewers", H, at(120), resolution="hour"))
    assert viewers == [(H, 6, "affiliate"), (H, 9, "cbhours"), (at(60), 7, "affiliate")]
    rank = points(history(client, "rank", H, at(120), resolution="hour"))
    assert rank == [(H, 9, "cbhours")]  # the best rank of the hour


@pytest.mark.usefixtures("alice")
def test_default_range_is_the_last_week(client: Client) -> None:
    body = client.get("/api/v1/persons/ALICE/history", params={"metric": "viewers"}).json()
    span = dt.datetime.fromisoformat(body["to"]) - dt.datetime.fromisoformat(body["from"])
    assert span == dt.timedelta(days=7)
    assert body["username"] == "alice"
    assert body["resolution"] == "hour"
    assert len(body["points"]) == 4  # the sample five days back included


def test_history_of_a_person_without_data(client: Client, conn: psycopg.Connection[Any]) -> None:
    write_cbhours_live(conn, [live("quiet", online=False)], observed_at=H)
    body = client.get("/api/v1/persons/quiet/history", params={"metric": "rank"}).json()
    assert body["points"] == []


@pytest.mark.usefixtures("alice")
def test_activity(client: Client) -> None:
    params = {"from": (H - dt.timedelta(hours=1)).isoformat(), "to": at(120).isoformat()}
    response = client.get("/api/v1/persons/alice/activity", params=params)
    assert response.status_code == 200
    body = response.json()
    assert [(d["day"], d["online_minutes"]) for d in body["daily"]] == [(H.date().isoformat(), 33)]
    assert [
        (dt.datetime.fromisoformat(s["at"]), s["type"], s["rank"], s["viewers"])
        for s in body["segments"]
    ] == [(at(3), "_public", 12, 3), (at(6), "_public", 11, 4)]


@pytest.mark.usefixtures("alice")
def test_activity_default_range_reaches_back_a_week(client: Client) -> None:
    body = client.get("/api/v1/persons/alice/activity").json()
    assert [d["online_minutes"] for d in body["daily"]] == [33]
    assert len(body["segments"]) == 3  # the one five days back included


@pytest.mark.usefixtures("alice")
def test_snapshots_newest_first_raw(client: Client) -> None:
    body = client.get("/api/v1/persons/alice/snapshots").json()
    got = [(s["source"], dt.datetime.fromisoformat(s["observed_at"])) for s in body["items"]]
    assert got == [
        ("affiliate", at(70)),
        ("cbhours", at(25)),
        ("affiliate", at(20)),
        ("cbhours", at(15)),
        ("affiliate", at(10)),
    ]
    newest = body["items"][0]["raw"]
    assert newest == msgspec.json.decode(room("alice", num_followers=120, num_users=7).raw)
    assert body["items"][1]["raw"]["rank"] == 9


@pytest.mark.usefixtures("alice")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"source": "cbhours"}, [("cbhours", 25), ("cbhours", 15)]),
        ({"source": "affiliate", "limit": "2"}, [("affiliate", 70), ("affiliate", 20)]),
        ({"limit": "1"}, [("affiliate", 70)]),
    ],
)
def test_snapshots_filters(
    client: Client, params: dict[str, str], expected: list[tuple[str, int]]
) -> None:
    items = client.get("/api/v1/persons/alice/snapshots", params=params).json()["items"]
    assert [(s["source"], dt.datetime.fromisoformat(s["observed_at"])) for s in items] == [
        (source, at(minutes)) for source, minutes in expected
    ]


@pytest.mark.parametrize("route", ["history?metric=rank", "activity", "snapshots", ""])
def test_unknown_person_is_404_everywhere(client: Client, route: str) -> None:
    response = client.get(f"/api/v1/persons/nobody/{route}".rstrip("/"))
    assert response.status_code == 404
    assert response.json()["field"] == "username"
