"""The Agent page in real Chromium against the world's agent: Run now is followed to the end.

The world's agent runs its crawl worker whatever the schedules say (they are all paused: the
worker takes every queued job that is not a CLI's, the scheduler only adds jobs), so a job
queued from the page runs at once. This test changes no schedule.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.screens import screenshot
from tests.web.world import UiWorld

CRAWL_SECONDS = 120


def test_a_crawl_started_from_the_agent_page_succeeds_on_screen(
    signed_in: Page, ui_world: UiWorld
) -> None:
    page = signed_in
    page.goto("/agent")
    schedules = page.locator("tr[data-schedule]")
    expect(schedules.first).to_be_visible()
    assert all(row.get_attribute("data-paused") == "true" for row in schedules.all()), (
        "the world's schedules should all be paused"
    )

    page.locator('tr[data-spider="affiliate"]').get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/agent/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    job = page.locator("#job")
    expect(job).to_have_attribute("data-refresh", f"/agent/jobs/{job_id}/fragment")
    # A mark on this document: a reload (or a navigation) would lose it.
    page.evaluate("window.roomwatchNoReload = true")

    expect(job).to_have_attribute("data-status", "succeeded", timeout=CRAWL_SECONDS * 1000)
    expect(job).to_have_attribute("data-done", "true")
    expect(job.locator("h2 .status")).to_have_text("succeeded")
    expect(job.locator("h2 .status")).to_have_class(re.compile(r"\bstatus-succeeded\b"))
    assert page.evaluate("window.roomwatchNoReload === true"), "the page was reloaded"
    assert page.url.endswith(f"/agent/jobs/{job_id}")
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(job.locator("pre.log")).to_contain_text("affiliate")

    reply = ui_world.api.get(f"/crawls/{job_id}")
    assert reply.status_code == 200, reply.text
    crawl = reply.json()
    assert (crawl["status"], crawl["trigger"], crawl["spider"]) == ("succeeded", "api", "affiliate")
    expect(job).to_contain_text(f"{crawl['pages']} · {crawl['requests']} · ")
    screenshot(page, "agent-job")

    page.get_by_role("link", name="← Agent").click()
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row.locator(".status")).to_have_text("succeeded")
    assert all(row.get_attribute("data-paused") == "true" for row in schedules.all())
    screenshot(page, "agent")
