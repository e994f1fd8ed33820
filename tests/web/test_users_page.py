"""The Users page in real Chromium, against the agent filled from the simulator."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.web.screens import screenshot
from tests.web.world import MARKUP_NAME, MARKUP_TAG, UiWorld


def test_signed_out_a_page_leads_to_sign_in_and_back(page: Page, ui_world: UiWorld) -> None:
    page.goto("/users?tag=markup")
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#login-form input[name=token]", "not-the-token-" + "x" * 30)
    page.click("#login-form button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("not this agent's API token")
    page.fill("#login-form input[name=token]", ui_world.token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/users\?tag=markup$"))
    screenshot(page, "login-done")


def test_a_form_post_without_the_csrf_token_is_refused(signed_in: Page) -> None:
    """Signed in, with the session cookie: a POST lacking the form's token still gets 403."""
    refused = signed_in.request.post("/logout", form={"x": "1"}, max_redirects=0)
    assert refused.status == 403
    forged = signed_in.request.post("/logout", form={"csrf_token": "forged"}, max_redirects=0)
    assert forged.status == 403
    signed_in.goto("/users")
    expect(signed_in.locator("table.persons")).to_be_visible()  # still signed in
    signed_in.click("form.signout button")
    signed_in.wait_for_url(re.compile(r"/login$"))
    signed_in.goto("/users")
    expect(signed_in.locator("#login-form")).to_be_visible()


def test_the_tag_filter_keeps_only_persons_with_the_tag(signed_in: Page, ui_world: UiWorld) -> None:
    signed_in.goto("/users")
    everyone = signed_in.locator("tr[data-username]").count()
    signed_in.fill("form.filters input[name=tag]", MARKUP_TAG)
    signed_in.click("form.filters button[type=submit]")
    signed_in.wait_for_url(re.compile(r"tag=%3Ci%3Ex"))
    shown = signed_in.locator("tr[data-username]").evaluate_all(
        "rows => rows.map(r => r.dataset.username)"
    )
    assert shown == [ui_world.people.markup]
    assert everyone > len(shown)
    for name in shown:
        tags = ui_world.api.get(f"/persons/{name}").json()["tags"]
        assert MARKUP_TAG in tags
    without = [
        row["username"]
        for row in ui_world.api.get("/persons", params={"limit": 50}).json()["items"]
        if MARKUP_TAG not in (row["tags"] or [])
    ]
    assert without and not set(without) & set(shown)


def _colour(page: Page, selector: str) -> str:
    return str(page.locator(selector).first.evaluate("e => getComputedStyle(e).color"))


def test_colours_and_legend_follow_each_values_source(signed_in: Page, ui_world: UiWorld) -> None:
    signed_in.goto("/users?following=true&sort=rank")
    legend = {
        name: _colour(signed_in, f".legend .swatch.src-{name}")
        for name in ("affiliate", "cbhours", "stale")
    }
    assert len(set(legend.values())) == 3  # three sources, three colours
    checked = 0
    for row in signed_in.locator("tr[data-username]").all()[:10]:
        username = row.get_attribute("data-username")
        sources: dict[str, Any] = ui_world.api.get(f"/persons/{username}").json()["sources"]
        for cell in row.locator("span.v[data-source]").all():
            field = cell.evaluate("e => e.parentElement.dataset.field")
            expected = sources[field]
            assert cell.get_attribute("data-source") == expected["source"], (username, field)
            colour = cell.evaluate("e => getComputedStyle(e).color")
            wanted = "stale" if expected["stale"] else expected["source"]
            if wanted in legend:
                assert colour == legend[wanted], (username, field, wanted)
            title = cell.get_attribute("title") or ""
            assert expected["observed_at"][:10] in title
            checked += 1
    assert checked >= 20
    ranked = signed_in.locator('td[data-field="rank"] span.v').first
    assert ranked.get_attribute("data-source") == "cbhours"
    assert _colour(signed_in, 'td[data-field="rank"] span.v') == legend["cbhours"]
    screenshot(signed_in, "users")


def test_a_display_name_with_markup_is_shown_as_text(signed_in: Page, ui_world: UiWorld) -> None:
    signed_in.goto(f"/users?q={ui_world.people.markup}")
    cell = signed_in.locator(
        f'tr[data-username="{ui_world.people.markup}"] td[data-field="display_name"]'
    )
    expect(cell).to_have_text(MARKUP_NAME)
    assert cell.locator("b").count() == 0
    tags = signed_in.locator(f'tr[data-username="{ui_world.people.markup}"] td[data-field="tags"]')
    assert tags.locator("i").count() == 0
    expect(tags).to_contain_text("<i>x</i>")
