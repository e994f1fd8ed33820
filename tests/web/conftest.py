"""Fixtures of the web UI tests: the world (simulator, crawled database, real agent), real
Chromium through Playwright's sync API, a fresh page per test, and a signed-in page.

The world is built once per session (its crawls cost seconds), the browser once per module;
tests must leave the world as they found it, or restore it. Every process they start carries a
session marker, and at the end none may be left running.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from roomwatch.config import load_config
from sessions.browser import launch_options
from tests.support import free_port
from tests.web.world import (
    ACCOUNT,
    MARKER_VARIABLE,
    TOKEN,
    AgentProcess,
    UiWorld,
    fill_database,
    leftover_processes,
    simulated_world,
    world_config,
    world_environment,
)
from upstream_sim.server import SimulatorServer
from upstream_sim.site.thumbnails import THUMBNAIL_PATH

VIEWPORT = {"width": 1280, "height": 900}
BROWSER_LAUNCH_SECONDS = 30


@pytest.fixture(scope="session")
def web_marker() -> Iterator[str]:
    """The session's process marker; afterwards, no process carrying it may still run."""
    marker = uuid.uuid4().hex
    yield marker
    left = leftover_processes(marker)
    if left:
        pytest.fail(f"processes left behind by the web tests (now killed): {', '.join(left)}")


@pytest.fixture(scope="session")
def ui_world(session_db_url: str, web_marker: str) -> Iterator[UiWorld]:
    """The simulator's world crawled into the session's database and served by the real agent
    (see tests/web/world.py for what it holds); every schedule is paused."""
    started = time.monotonic()
    state, people = simulated_world()
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-ui-"))
    try:
        with SimulatorServer(state) as sim:
            # Thumbnails from the simulator itself (allowed host 127.0.0.1), not the real host.
            state.affiliate.thumbnail_base = sim.base_url + THUMBNAIL_PATH
            port = free_port()
            environment = world_environment(sim, session_db_url, data_dir, port)
            config = world_config(environment)
            with pytest.MonkeyPatch.context() as patch:
                # Only while starting: the crawl processes and the agent inherit the marker.
                patch.setenv(MARKER_VARIABLE, web_marker)
                fill_database(config, session_db_url, sim)
                agent = AgentProcess(environment, data_dir)
            try:
                base_url = f"http://127.0.0.1:{port}"
                agent.wait_until_healthy(base_url)
                with httpx.Client(
                    base_url=f"{base_url}/api/v1",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=30,
                ) as api:
                    yield UiWorld(
                        base_url=base_url,
                        token=TOKEN,
                        api=api,
                        db_url=session_db_url,
                        sim=sim,
                        data_dir=data_dir,
                        account=ACCOUNT,
                        people=people,
                        config=config,
                        setup_seconds=time.monotonic() - started,
                    )
            finally:
                code = agent.stop()
            if code != 0:
                pytest.fail(f"the agent ended with {code} on SIGTERM:\n{agent.output()[-3000:]}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(web_marker: str) -> Iterator[Browser]:
    """Headless Chromium as roomwatch launches it: the executable its own discovery finds
    (``ROOMWATCH_BROWSER``, else a system Chromium, else Playwright's) and its flags
    (``--no-sandbox`` only as root), in a scrubbed environment.

    One per module, not per session: while Playwright's sync API runs, its event loop counts as
    running in this thread, so ``asyncio.run`` fails in every test until it stops (a test module
    of the browser tests must not use ``asyncio.run`` either).
    """
    options = launch_options(load_config().browser)
    options["env"] = {**options["env"], MARKER_VARIABLE: web_marker}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MARKER_VARIABLE, web_marker)  # the Playwright driver inherits it
        playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(**options, timeout=BROWSER_LAUNCH_SECONDS * 1000)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser, ui_world: UiWorld) -> Iterator[Page]:
    """A page in a browser context of its own (no cookies from other tests), 1280x900, whose
    relative URLs resolve against the agent (``page.goto("/users")``)."""
    context = browser.new_context(base_url=ui_world.base_url, viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def signed_in(page: Page, ui_world: UiWorld) -> Page:
    """``page``, signed in through the login form with the API token (now on ``/users``)."""
    page.goto("/login")
    token = page.locator("#login-form input[name=token]")
    token.fill(ui_world.token)
    token.press("Enter")  # submits the form as its submit button would
    page.wait_for_url(re.compile(r"^[^?#]*/users(?:[?#].*)?$"))
    return page
