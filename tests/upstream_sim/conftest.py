"""Fixtures: one simulator per test module on loopback, reset to a known feed before each test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from upstream_sim import AffiliateFeed, SimulatorServer, SimulatorState

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"
ROOMS = 1200
SEED = 7
WM = "T3stWm"
BASE_PARAMS = {"wm": WM, "client_ip": "request_ip"}


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


def sample_rooms(name: str) -> list[dict[str, Any]]:
    """The ``results`` of one real 2025 Affiliate sample."""
    document = msgspec.json.decode((SAMPLES / name).read_bytes())
    rooms: list[dict[str, Any]] = document["results"]
    return rooms


def crawl(client: httpx.Client, url: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Page through the feed the documented way: offset += limit until offset >= count."""
    rooms: list[dict[str, Any]] = []
    offset = 0
    while True:
        reply = client.get(url, params={**BASE_PARAMS, **params, "limit": limit, "offset": offset})
        reply.raise_for_status()
        page = reply.json()
        rooms.extend(page["results"])
        offset += limit
        if offset >= page["count"] or not page["results"]:
            return rooms
