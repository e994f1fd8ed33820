"""The Follow page in real Chromium against the world's agent: an uploaded followers page
changes the page, and the CSV export of Following has one row per followed person.

The world is shared by every browser test of the session, so the upload changes only what no
other test looks at: the site gains one follower (in the simulator too, so a later followers
crawl agrees), the page saved from it is uploaded, and afterwards both are put back as they
were (one follower lost: far below the mass-change guard).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.web.screens import screenshot
from tests.web.world import UiWorld
from upstream_sim.site.follow_lists import FollowLists
from upstream_sim.site.list_pages import followers_page
from upstream_sim.site.state import Account

NEW_FOLLOWER = "fan_of_the_upload"
TABS = ("following", "followers", "unfollowed", "lost_followers")


def _saved_followers_page(account: str, lists: FollowLists) -> bytes:
    """The whole followers list on one page, as the site shows it (what "save page" keeps)."""
    size = max(1, len(lists.followers))
    html = followers_page(
        Account(account, "unused", lists), page=1, page_size=size, age_gate=False, broken=False
    )
    return html.encode()


def _usernames(ui_world: UiWorld, **filters: str) -> list[str]:
    """Every username ``GET /persons`` lists under ``filters``, all pages."""
    names: list[str] = []
    params: dict[str, Any] = {"limit": 200, **filters}
    while True:
        body = ui_world.api.get("/persons", params=params).raise_for_status().json()
        names += [person["username"] for person in body["items"]]
        if body["next_cursor"] is None:
            return names
        params["cursor"] = body["next_cursor"]


@pytest.fixture
def new_follower(ui_world: UiWorld, tmp_path: Path) -> Iterator[Path]:
    """The site with one more follower, and its followers page saved to a file; afterwards the
    site's list and the agent's follow state as before."""
    site = ui_world.sim.state.site
    before = site.follows(ui_world.account)
    grown = FollowLists(before.online, before.offline, (NEW_FOLLOWER, *before.followers))
    site.set_follows(ui_world.account, grown)
    saved = tmp_path / "followers.html"
    saved.write_bytes(_saved_followers_page(ui_world.account, grown))
    try:
        yield saved
    finally:
        site.set_follows(ui_world.account, before)
        restored = ui_world.api.post(
            "/imports/html",
            params={"kind": "followers"},
            content=_saved_followers_page(ui_world.account, before),
            headers={"Content-Type": "text/html"},
        )
        assert restored.status_code == 200, restored.text
        assert NEW_FOLLOWER not in _usernames(ui_world, follower="true")


def test_uploading_a_followers_page_changes_the_follow_page(
    signed_in: Page, ui_world: UiWorld, new_follower: Path
) -> None:
    page = signed_in
    page.goto("/follow?tab=followers")
    followers = page.locator('[data-list="follower"] .count')
    before = int(followers.inner_text())
    assert page.locator(f'#follow-table tr[data-username="{NEW_FOLLOWER}"]').count() == 0

    page.locator("details.upload summary").click()
    form = page.locator("#upload-form")
    form.locator("select[name=kind]").select_option("followers")
    form.locator("input[name=file]").set_input_files(str(new_follower))
    form.locator("button[type=submit]").click()

    result = page.locator("#upload-result")
    expect(result).to_contain_text("the whole list")
    expect(result).to_contain_text("1 new followers, 0 lost followers.")
    assert int(followers.inner_text()) == before + 1
    expect(page.locator('[data-list="follower"] [data-added]')).to_have_attribute("data-added", "1")
    row = page.locator(f'#follow-table tr[data-username="{NEW_FOLLOWER}"]')
    expect(row).to_be_visible()
    expect(row.locator('td[data-field="until"]')).to_have_text("now")
    expect(page.locator('#follow-events tr[data-kind="new_follower"]').first).to_contain_text(
        NEW_FOLLOWER
    )
    screenshot(page, "follow-upload")
    assert NEW_FOLLOWER in _usernames(ui_world, follower="true")


def test_the_csv_export_of_following_has_one_row_per_followed_person(
    signed_in: Page, ui_world: UiWorld
) -> None:
    page = signed_in
    page.goto("/follow")
    with page.expect_download() as download:
        page.locator(".exports a", has_text="CSV").click()
    path = download.value.path()
    with open(path, newline="", encoding="utf-8") as exported:
        rows = list(csv.DictReader(exported))
    followed = _usernames(ui_world, following="true")
    assert followed, "the world follows somebody"
    assert len(rows) == len(followed)
    assert sorted(row["username"] for row in rows) == sorted(followed)
    assert all(row["following"] == "true" for row in rows)


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_shows_its_table(signed_in: Page, ui_world: UiWorld, tab: str) -> None:
    page = signed_in
    page.goto(f"/follow?tab={tab}")
    expect(page.locator("#follow-table")).to_have_attribute("data-tab", tab)
    expect(page.locator('.tabs a[aria-current="page"]')).to_have_count(1)
    if tab == "following":
        shown = page.locator("#follow-table tbody tr[data-username]").count()
        assert shown == min(50, len(_usernames(ui_world, following="true")))
        # A display name with markup is text on this page too.
        markup = page.locator(f'tr[data-username="{ui_world.people.markup}"]')
        expect(markup.locator('td[data-field="display_name"]')).to_contain_text("<b>bold</b>")
    screenshot(page, "follow" if tab == "following" else f"follow-{tab}")
