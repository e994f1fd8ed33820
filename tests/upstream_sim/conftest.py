"""Fixtures: one simulator per test module on loopback, reset to a known feed before each test."""

from collections.abc import Iterator

import httpx
import pytest

from tests.upstream_sim.support import OWNER, ROOMS, SEED
from upstream_sim import AffiliateFeed, SimulatorServer, SimulatorState


@pytest.fixture(scope="module")
def _server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorState(affiliate=AffiliateFeed(ROOMS, seed=SEED))) as server:
        yield server


@pytest.fixture
def sim(_server: SimulatorServer) -> SimulatorServer:
    """The module's running simulator, with a fresh feed, no faults and an empty log."""
    _server.state.affiliate.reset(ROOMS, SEED, move_between_pages=0)
    _server.state.faults.clear()
    _server.state.requests.clear()
    return _server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain HTTP client (no retries), like the crawler's transport."""
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture
def owner(sim: SimulatorServer) -> str:
    """A site account with 5 followers and an empty Events stream; default tokens and limits."""
    sim.state.site.reset()
    sim.state.events.reset()
    sim.state.stats.reset()
    sim.state.site.add_account(OWNER, "pw", followers=5)
    return OWNER
