"""Fixtures: the simulated site on loopback, a config pointing at it, and no stray Chromium.

Every browser these tests start inherits a per-module marker in its environment; at the end of
each module no process carrying it may still run (it would be a Chromium or Playwright driver
left behind, even one re-parented away from this process). Other test runs on the same machine
carry other markers, so they cannot make this check flaky.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomwatch.config import Config
from tests.processes import marked_processes
from tests.sessions.support import ACCOUNT, PASSWORD, make_config
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

# LC_*: one of the few kinds of name the browser inherits (sessions.browser.browser_environment);
# not ROOMWATCH_*: the config would reject it, and the browser never gets those.
_MARKER_VARIABLE = "LC_TEST_BROWSER_MARKER"


@pytest.fixture(scope="module", autouse=True)
def no_browser_left_behind() -> Iterator[None]:
    """Fails the module's last test if a process started by its browsers is still running."""
    marker = uuid.uuid4().hex
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(_MARKER_VARIABLE, marker)
        yield
    deadline = time.monotonic() + 10
    while left := marked_processes(_MARKER_VARIABLE, marker):
        if time.monotonic() > deadline:
            names = ", ".join(f"{p.info['name']} ({p.pid})" for p in left)
            pytest.fail(f"processes left behind: {names}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sim_server() -> Iterator[SimulatorServer]:
    """One simulator per module."""
    with SimulatorServer(SimulatorState()) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimulatorServer) -> SimulatorServer:
    """The simulator with one account (3 of 12 followed online) and every switch off."""
    sim_server.state.site.reset()
    sim_server.state.site.add_account(ACCOUNT, PASSWORD, followed_online=3, followed_total=12)
    sim_server.state.requests.clear()
    return sim_server


@pytest.fixture
def config(sim: SimulatorServer, tmp_path: Path) -> Config:
    """A config pointing at the simulator, with a fresh data dir."""
    return make_config(sim.base_url, tmp_path / "data")
