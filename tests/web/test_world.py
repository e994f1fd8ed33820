"""The world the UI tests rely on, as the agent's JSON API (bearer) serves it, and the browser
that reaches it."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page

from storage.schedules import DEFAULT_SCHEDULES
from tests.web.screens import screenshot
from tests.web.world import (
    ACTIVITY_DAYS,
    AFFILIATE_ROOMS,
    FOLLOWED_OFFLINE,
    FOLLOWED_ONLINE,
    FOLLOWERS,
    MARKUP_NAME,
    MARKUP_SUBJECT,
    MARKUP_TAG,
    TROPHIES,
    UiWorld,
)


def _all(world: UiWorld, **filters: Any) -> list[dict[str, Any]]:
    """Every row of ``GET /persons`` with these filters, page after page."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": 200}
    while True:
        reply = world.api.get("/persons", params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        rows += page["items"]
        if page["next_cursor"] is None:
            return rows
        params["cursor"] = page["next_cursor"]


def _person(world: UiWorld, username: str) -> dict[str, Any]:
    reply = world.api.get(f"/persons/{username}")
    assert reply.status_code == 200, reply.text
    detail: dict[str, Any] = reply.json()
    return detail


def test_the_world_has_its_shape() -> None:
    # The numbers the UI tests count on, and the fixture's size kept small (its crawls).
    assert (AFFILIATE_ROOMS, FOLLOWED_ONLINE + FOLLOWED_OFFLINE, FOLLOWERS, TROPHIES) == (
        300,
        40,
        20,
        5,
    )


def test_followed_and_followers_are_known(ui_world: UiWorld) -> None:
    people = ui_world.people
    following = _all(ui_world, following="true")
    assert {row["username"] for row in following} == {name.lower() for name in people.followed}
    assert all(row["following"] is True for row in following)
    online = {row["username"] for row in following if row["online"]}
    assert online == {name.lower() for name in people.followed_online}

    followers = _all(ui_world, follower="true")
    assert {row["username"] for row in followers} == {name.lower() for name in people.followers}
    assert all(row["follower"] is True for row in followers)
    assert len(_all(ui_world)) >= AFFILIATE_ROOMS + FOLLOWED_OFFLINE


def test_markup_is_stored_verbatim(ui_world: UiWorld) -> None:
    person = _person(ui_world, ui_world.people.markup)
    assert person["display_name"] == MARKUP_NAME
    assert person["subject"] == MARKUP_SUBJECT
    assert MARKUP_TAG in person["tags"]
    assert (person["following"], person["online"]) == (True, True)
    assert person["sources"]["display_name"]["source"] == "affiliate"
    assert person["sources"]["tags"]["source"] == "affiliate"


def test_trophy_persons_have_cbhours_data(ui_world: UiWorld) -> None:
    people = ui_world.people
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=ACTIVITY_DAYS + 1)).isoformat()
    for name in people.trophy:
        person = _person(ui_world, name)
        assert person["has_cbhours_trophy"] is True, name
        history = ui_world.api.get(
            f"/persons/{name}/history", params={"metric": "rank", "from": since}
        )
        assert history.status_code == 200, history.text
        assert {point["source"] for point in history.json()["points"]} == {"cbhours"}, name
    for name in people.trophy_online:
        person = _person(ui_world, name)
        assert person["rank"] is not None and person["grank"] is not None, name
        assert person["sources"]["rank"]["source"] == "cbhours"
        assert person["sources"]["followers"]["source"] == "cbhours"
    others = [name for name in people.followed if name not in people.trophy]
    assert all(_person(ui_world, name)["has_cbhours_trophy"] is False for name in others[:5])


def test_every_schedule_is_paused(ui_world: UiWorld) -> None:
    reply = ui_world.api.get("/schedules")
    assert reply.status_code == 200, reply.text
    schedules = reply.json()["items"]
    assert {item["name"] for item in schedules} >= set(DEFAULT_SCHEDULES)
    assert all(item["paused"] for item in schedules)


def test_the_api_wants_the_bearer_token(ui_world: UiWorld) -> None:
    reply = ui_world.api.get("/status", headers={"Authorization": "Bearer not-the-token"})
    assert reply.status_code == 401


def test_the_browser_reaches_the_agent(page: Page, ui_world: UiWorld) -> None:
    reply = page.goto("/api/v1/health")
    assert reply is not None and reply.status == 200
    assert '"status":"ok"' in page.content().replace(" ", "")
    shot = screenshot(page, "world-health")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_signed_in_is_on_users_with_a_session_cookie(signed_in: Page) -> None:
    assert urlsplit(signed_in.url).path == "/users"
    cookies = {cookie["name"]: cookie for cookie in signed_in.context.cookies()}
    assert cookies["roomwatch_session"].get("httpOnly") is True
