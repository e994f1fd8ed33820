"""Several accounts in one install: the person list's follow filters, one person's state, the
follow events and their export are one account's; ``account=`` names it, the only one is the
default, and several with none named is a 400 naming them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from litestar import Litestar
from litestar.testing import TestClient

from storage.follow_state import reconcile
from storage.writers import write_affiliate_poll
from tests.factories import room

Client = TestClient[Litestar]
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
T1 = T0 + dt.timedelta(days=1)
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _follow(conn: psycopg.Connection[Any], account: str, *checks: list[str]) -> None:
    for n, names in enumerate(checks):
        reconcile(
            conn,
            "following",
            names,
            account=account,
            checked_at=T0 + dt.timedelta(days=n),
            source="followed_cams",
        )


def _names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(row["username"] for row in response.json()["items"])


def test_one_account_is_the_default(client: Client, conn: psycopg.Connection[Any]) -> None:
    write_affiliate_poll(conn, [room(n) for n in ("ann", "bob", "cid")], observed_at=T1)
    _follow(conn, "alice", ["ann", "bob"])
    assert _names(client.get("/api/v1/persons", params={"following": "true"})) == ["ann", "bob"]
    named = client.get("/api/v1/persons", params={"following": "true", "account": "ALICE"})
    assert _names(named) == ["ann", "bob"]
    unknown = client.get("/api/v1/persons", params={"following": "true", "account": "zed"})
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "account"
    assert "accounts: alice" in unknown.json()["detail"]


def test_several_accounts_each_have_their_own_follow_state(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    write_affiliate_poll(conn, [room(n) for n in ("ann", "bob", "cid")], observed_at=T1)
    _follow(conn, "alice", ["ann", "bob"])
    _follow(conn, "carol", ["ann", "bob"], ["bob"])  # carol unfollowed ann at T1

    ambiguous = client.get("/api/v1/persons", params={"following": "true"})
    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "account"
    assert "name one of alice, carol" in ambiguous.json()["detail"]
    # Without a follow filter the list still answers: its flags say what any account knows.
    assert _names(client.get("/api/v1/persons")) == ["ann", "bob", "cid"]

    params = {"following": "true", "account": "carol"}
    carol = client.get("/api/v1/persons", params=params)
    assert _names(carol) == ["bob"]
    params = {"following": "false", "account": "carol"}
    rows = {r["username"]: r for r in client.get("/api/v1/persons", params=params).json()["items"]}
    assert sorted(rows) == ["ann", "cid"]
    assert rows["ann"]["following"] is False
    assert rows["ann"]["unfollowed_at"] is not None
    assert rows["cid"]["following"] is None
    assert _names(client.get("/api/v1/persons", params={**params, "account": "alice"})) == ["cid"]

    # One person: any account's state, or one account's.
    assert client.get("/api/v1/persons/ann").json()["following"] is True
    ann = client.get("/api/v1/persons/ann", params={"account": "carol"}).json()
    assert (ann["following"], ann["following_since"]) == (False, None)
    assert ann["unfollowed_at"] is not None
    assert client.get("/api/v1/persons/ann", params={"account": "alice"}).json()["following"]

    # Follow events, and their export, are one account's.
    assert client.get("/api/v1/follow-events").status_code == 400
    events = client.get("/api/v1/follow-events", params={"account": "carol"}).json()["items"]
    assert [(e["username"], e["kind"]) for e in events] == [("ann", "unfollowed")]
    assert client.get("/api/v1/follow-events", params={"account": "alice"}).json()["items"] == []
    export = client.get(
        "/api/v1/exports/follow-events", params={"format": "json", "account": "carol"}
    )
    assert [e["username"] for e in export.json()] == ["ann"]
    persons = client.get(
        "/api/v1/exports/persons",
        params={"format": "json", "following": "true", "account": "alice"},
    )
    assert sorted(p["username"] for p in persons.json()) == ["ann", "bob"]


def _followers_page(owner: str, names: list[str]) -> str:
    """One whole followers page of ``owner`` (the header shows whose it is), counted."""
    rows = "".join(
        f"<li class='follower'><a class='username' href='/{n}/'>{n}</a></li>" for n in names
    )
    return (
        "<html><body><div id='header'><div id='user_information'>"
        f"<a class='username'>{owner}</a></div></div><div id='main'><h1>Followers "
        f"<span class='followers_count'>({len(names)})</span></h1>"
        f"<ul class='followers_list'>{rows}</ul></div></body></html>"
    )


def test_an_import_is_the_account_its_pages_show(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    names = ["fan_a", "fan_b"]
    pages = [_followers_page("owner", names)]
    other = client.post(
        "/api/v1/imports/html",
        params={"kind": "followers", "account": "carol"},
        content=pages[0],
        headers=HTML,
    )
    assert other.status_code == 400
    assert other.json()["detail"] == "account: the pages are owner's, not carol's"
    assert conn.execute("SELECT count(*) FROM persons").fetchone() == (0,)  # nothing stored
    done = client.post(
        "/api/v1/imports/html", params={"kind": "followers"}, content=pages[0], headers=HTML
    )
    assert done.status_code == 200, done.text
    assert done.json()["account"] == "owner"  # whose pages they were, from their header
    rows = conn.execute(
        "SELECT a.account, p.username, a.follower FROM account_persons a "
        "JOIN persons p USING (person_id) ORDER BY 2"
    ).fetchall()
    assert rows == [("owner", name, True) for name in names]
    # A page that does not show whose it is, on an install of several accounts, is refused.
    conn.execute("INSERT INTO accounts (account) VALUES ('zoe')")
    headless = pages[0].replace("<a class='username'>owner</a>", "")
    refused = client.post(
        "/api/v1/imports/html", params={"kind": "followers"}, content=headless, headers=HTML
    )
    assert refused.status_code == 400
    assert "name one of owner, zoe" in refused.json()["detail"]
