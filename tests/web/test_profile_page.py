"""The Profile page in real Chromium against the world: the charts carry the points the API's
history has, coloured by the stylesheet per source; markup shows as text; the watch toggle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.web.screens import screenshot
from tests.web.world import MARKUP_NAME, MARKUP_SUBJECT, UiWorld

METRICS = ("followers", "rank", "grank")
HOVER = re.compile(r"^(Affiliate feed|CBHours), \d{4}-\d\d-\d\d \d\d:\d\d UTC: [\d,]+$")


def history(world: UiWorld, username: str, metric: str, chart: Locator) -> list[dict[str, Any]]:
    """The API's points for the chart's own range."""
    params = {
        "metric": metric,
        "from": chart.get_attribute("data-from"),
        "to": chart.get_attribute("data-to"),
    }
    reply = world.api.get(f"/persons/{username}/history", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    assert body["resolution"] == chart.get_attribute("data-resolution")
    points: list[dict[str, Any]] = body["points"]
    return points


def fill_of(locator: Locator) -> str:
    colour: str = locator.evaluate("element => getComputedStyle(element).fill")
    return colour


def colour_of(locator: Locator) -> str:
    colour: str = locator.evaluate("element => getComputedStyle(element).color")
    return colour


@pytest.mark.parametrize("chosen", ["24h", "7d", "all"])
def test_the_charts_carry_the_api_history(signed_in: Page, ui_world: UiWorld, chosen: str) -> None:
    name = ui_world.people.trophy_online[0]
    signed_in.goto(f"/users/{name}?range={chosen}")
    for metric in METRICS:
        chart = signed_in.locator(f'svg[data-metric="{metric}"]')
        points = history(ui_world, name, metric, chart)
        assert points, f"{metric}: the world should have points for {name}"
        expect(chart.locator("circle.pt")).to_have_count(len(points))
        for source in {point["source"] for point in points}:
            own = sum(1 for point in points if point["source"] == source)
            dots = chart.locator(f"g.src-{source} circle.pt")
            expect(dots).to_have_count(own)
            # The colour is the stylesheet's for that source (the legend's swatch).
            swatch = signed_in.locator(f".legend .swatch.src-{source}")
            assert fill_of(dots.first) == colour_of(swatch)
        assert HOVER.match(chart.locator("circle.pt title").first.text_content() or "")
    cells = signed_in.locator(".heatmap rect.cell")
    assert cells.count() % 24 == 0 and cells.count() > 0
    assert signed_in.locator(".heatmap rect.cell:not(.none)").count() > 0
    expect(signed_in.locator(".ranges a[aria-current=page]")).to_have_attribute(
        "href", f"/users/{name}?range={chosen}#history"
    )
    if chosen == "7d":
        screenshot(signed_in, "profile")


def test_markup_in_a_display_name_is_text(signed_in: Page, ui_world: UiWorld) -> None:
    signed_in.goto(f"/users/{ui_world.people.markup}")
    name = signed_in.locator(".profile-head .display-name")
    expect(name).to_have_text(MARKUP_NAME)
    expect(name.locator("b")).to_have_count(0)
    subject = signed_in.locator('dd[data-field="subject"]')
    expect(subject).to_have_text(MARKUP_SUBJECT)
    expect(subject.locator("script, i")).to_have_count(0)
    expect(signed_in.locator('dd[data-field="display_name"] .src-affiliate')).to_have_count(1)


def test_the_watch_toggle(signed_in: Page, ui_world: UiWorld) -> None:
    name = ui_world.people.followed_offline[-1]
    before = ui_world.api.get(f"/persons/{name}").json()["watch"]
    try:
        signed_in.goto(f"/users/{name}")
        signed_in.locator("#watch-toggle").click()
        signed_in.wait_for_load_state()
        expect(signed_in.locator('dd[data-field="watch"]')).to_have_text("no" if before else "yes")
        assert signed_in.url.endswith(f"/users/{name}")
        assert ui_world.api.get(f"/persons/{name}").json()["watch"] is (not before)
        signed_in.locator("#watch-toggle").click()
        expect(signed_in.locator('dd[data-field="watch"]')).to_have_text("yes" if before else "no")
        assert ui_world.api.get(f"/persons/{name}").json()["watch"] is before
    finally:
        ui_world.api.put(f"/persons/{name}/watch", json={"watch": before})
