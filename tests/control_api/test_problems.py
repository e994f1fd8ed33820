"""Every bad parameter is a 400 problem details that names it, by the name the client sent."""

from __future__ import annotations

import base64
import datetime as dt

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.cursors import encode_cursor
from control_api.problems import Problem

Client = TestClient[Litestar]
NOW = dt.datetime.now(dt.UTC)


def _iso(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat()


CASES: list[tuple[str, dict[str, str], str]] = [
    ("/persons", {"sort": "name"}, "sort"),
    ("/persons", {"limit": "0"}, "limit"),
    ("/persons", {"limit": "201"}, "limit"),
    ("/persons", {"limit": "ten"}, "limit"),
    ("/persons", {"gender": "x"}, "gender"),
    ("/persons", {"online": "maybe"}, "online"),
    ("/persons", {"q": "x" * 101}, "q"),
    ("/persons", {"cursor": "not-a-cursor!"}, "cursor"),
    ("/persons", {"cursor": base64.urlsafe_b64encode(b"[1,2]").decode()}, "cursor"),
    ("/persons", {"cursor": encode_cursor("persons:followers", 5, 1), "sort": "rank"}, "cursor"),
    (
        "/persons",
        {"cursor": encode_cursor("persons:last_seen", 5, 1), "sort": "last_seen"},
        "cursor",
    ),
    ("/persons", {"cursor": encode_cursor("follow-events", NOW, 1)}, "cursor"),
    ("/persons/alice/history", {}, "metric"),
    ("/persons/alice/history", {"metric": "likes"}, "metric"),
    ("/persons/alice/history", {"metric": "rank", "from": "yesterday"}, "from"),
    ("/persons/alice/history", {"metric": "rank", "to": "2025-13-01T00:00:00Z"}, "to"),
    ("/persons/alice/history", {"metric": "rank", "from": _iso(1), "to": _iso(2)}, "from"),
    ("/persons/alice/history", {"metric": "rank", "from": _iso(91)}, "from"),
    (
        "/persons/alice/history",
        {"metric": "rank", "from": _iso(8), "resolution": "raw"},
        "resolution",
    ),
    ("/persons/alice/history", {"metric": "rank", "resolution": "minute"}, "resolution"),
    ("/persons/alice/activity", {"from": "2025-01-01"}, "from"),
    ("/persons/alice/snapshots", {"source": "twitter"}, "source"),
    ("/persons/alice/snapshots", {"limit": "0"}, "limit"),
    ("/follow-events", {"kind": "blocked"}, "kind"),
    ("/follow-events", {"since": "last week"}, "since"),
    ("/follow-events", {"cursor": encode_cursor("persons:followers", 5, 1)}, "cursor"),
    ("/follow-events", {"cursor": encode_cursor("follow-events", None, 1)}, "cursor"),
]


@pytest.mark.parametrize(("path", "params", "field"), CASES)
def test_bad_parameter_is_named(
    client: Client, path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(f"/api/v1{path}", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 400
    assert body.get("field") == field, body
    assert body["detail"].startswith(f"{field}: ")
    assert field in {item["key"] for item in body["extra"]}
    msgspec.convert(body, Problem)  # the documented shape (OpenAPI: components.Problem)


def test_a_lone_old_to_is_fine(client: Client) -> None:
    response = client.get("/api/v1/persons/nobody/activity", params={"to": _iso(100)})
    assert response.status_code == 404  # the range checks passed: from defaults to to - 7 days


def test_nul_characters_are_refused_naming_the_parameter(client: TestClient[Litestar]) -> None:
    # Found by the schema fuzzer: PostgreSQL text cannot hold NUL, which used to give a 500.
    response = client.get("/api/v1/persons", params={"q": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["field"] == "q"
    body = client.post(
        "/api/v1/crawls",
        content=b'{"spider": "affiliate\\u0000"}',
        headers={"Content-Type": "application/json"},
    )
    assert body.status_code == 400
    assert body.json()["field"] == "body"


def test_far_away_years_are_refused_not_overflowed(client: TestClient[Litestar]) -> None:
    # Found by the schema fuzzer: the default range before year 1 overflowed into a 500.
    response = client.get("/api/v1/persons/nobody/activity", params={"to": "0001-01-01T06:11:06Z"})
    assert response.status_code == 400
    assert response.json()["field"] == "to"
