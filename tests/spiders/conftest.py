"""Fixtures for crawl tests: the simulator, and an environment that points a crawl at it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roomwatch.config import Config, load_config
from tests.support import as_url
from upstream_sim.affiliate_feed import AffiliateFeed
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorState(affiliate=AffiliateFeed(1234, seed=7))) as server:
        yield server


@pytest.fixture
def crawl_env(
    db_url: str, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Config]:
    """Environment (inherited by crawl processes) and config for crawls against the simulator."""
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-crawl-"))
    env = {
        "ROOMWATCH_DATA_DIR": str(data_dir),
        "ROOMWATCH_DATABASE_URL": as_url(db_url),
        "ROOMWATCH_AFFILIATE_URL": sim.affiliate_url,
        "ROOMWATCH_AFFILIATE_WM": "testwm",
        "ROOMWATCH_CHATURBATE_URL": sim.base_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield load_config()
    shutil.rmtree(data_dir, ignore_errors=True)
