"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test, the
upstream simulator with an environment that points crawls at it, the control API app, and a
loopback HTTP recorder.

Runs in parallel (``pytest -n 2``, pytest-xdist) hold up: every worker is a session of its own,
so it starts its own server and migrated template; temp dirs are made with ``mkdtemp``, ports by
``tests.support.free_port`` (a share of its own per worker), and a data dir of the worker's own
stands in for the real one. The web UI tests, which share one world, run on one worker
(``--dist loadgroup``, see :func:`pytest_xdist_make_scheduler`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from psycopg import sql

from control_api.app import create_app
from roomwatch.config import Config, load_config
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from tests.factories import TOKEN
from tests.support import CbhoursCrawls, crawl_environment, fresh_database, with_db
from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

TEMPLATE = "roomwatch_template"
# Tests talk to loopback only. Anything (a crawl process, an agent) that reads its upstream URLs
# from the environment without a test pointing it at the simulator gets a closed local port.
_NOWHERE = "http://127.0.0.1:9"
os.environ.setdefault("ROOMWATCH_CHATURBATE_URL", _NOWHERE)
os.environ.setdefault("ROOMWATCH_AFFILIATE_URL", f"{_NOWHERE}/api/public/affiliates/onlinerooms/")
os.environ.setdefault("ROOMWATCH_CBHOURS_URL", f"{_NOWHERE}/api.php")
# The same for the data dir: whatever reads it from the environment without a test's own gets
# this process's (one per xdist worker; rate-limit files, keys, sessions), never the real one.
_DATA_DIR = tempfile.mkdtemp(prefix="roomwatch-test-data-")
os.environ.setdefault("ROOMWATCH_DATA_DIR", _DATA_DIR)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


# Tests that share one costly world each, run on one worker: the browser tests, which share
# the web UI world (tests/web/conftest.py::ui_world), and the two Scrapyd servers of the
# scrapyd runner's tests (tests/agent/test_scrapyd_runner.py::cluster).
_SHARED_WORLDS = {
    "ui_world": re.compile(r"tests/web/test_(world|\w+_page)\.py"),
    "scrapyd_cluster": re.compile(r"tests/agent/test_scrapyd_runner\.py"),
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadgroup``, the tests of each shared world are one group: the world is
    built once, on one worker, not on every worker that gets one of them.

    A scheduler, not an ``xdist_group`` mark: pytest-xdist 3.8 groups marked tests by renaming
    them (``item._nodeid``), which pytest 9.2 no longer reads, so marks alone group nothing.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

    class WorldGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            for group, modules in _SHARED_WORLDS.items():
                if modules.fullmatch(module):
                    return group
            return str(super()._split_scope(nodeid))

    return WorldGroupScheduling(config, log)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Conninfo of the session's embedded server (its ``roomwatch`` database)."""
    # Not tmp_path: as root, pytest's base temp dir is private to root (0700); the server user
    # gets search-only ACLs on our own folder instead, exactly as in production.
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-test-"))
    server = EmbeddedPostgres(data_dir)
    conninfo = server.start()
    try:
        yield conninfo
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> str:
    """A database with every migration applied, cloned for each test."""
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    with psycopg.connect(with_db(pg_server, TEMPLATE)) as conn:
        apply_migrations(conn)
    return TEMPLATE


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    """Conninfo of a new, empty database (for migration tests)."""
    with fresh_database(pg_server, None) as url:
        yield url


@pytest.fixture
def db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """Conninfo of a new, fully migrated database of this test's own."""
    with fresh_database(pg_server, migrated_template) as url:
        yield url


@pytest.fixture(scope="session")
def session_db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """Conninfo of a migrated database shared by the whole session (a world that is built once,
    e.g. the web UI tests' agent); tests using it must not change what others rely on."""
    with fresh_database(pg_server, migrated_template) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to this test's own migrated database."""
    with psycopg.connect(db_url) as conn:
        yield conn


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to this test's database, for writers and direct setup."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def app_config(tmp_path: Path) -> Config:
    """Defaults only (no environment), with a data dir of this test's own."""
    return load_config({"ROOMWATCH_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def app(db_url: str, app_config: Config) -> Litestar:
    """The control API (and the web pages) over this test's own database."""
    return create_app(app_config, db_url, TOKEN, "test")


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
    for key, value in crawl_environment(db_url, sim, data_dir).items():
        monkeypatch.setenv(key, value)
    yield load_config()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def cbhours(
    crawl_env: Config, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> CbhoursCrawls:
    """The set-up of a CBHours crawl test: ``crawl_env`` with the simulator's CBHours. Call it
    for the crawl config (its settings also go to the environment, which crawl processes inherit).

    Its keywords: ``interval``, the simulator's limit (default 0.1 s: short, so pacing costs
    little, but always enforced; crawls pace at 1.2 times it; None keeps the real 1 s limit
    and the configured default pace), and more ``ROOMWATCH_*`` variables by name without the
    prefix (``BACKOFF_MAX_RETRIES="2"``).
    """

    def configure(*, interval: float | None = 0.1, **env: str) -> Config:
        monkeypatch.setenv("ROOMWATCH_CBHOURS_URL", sim.cbhours_url)
        monkeypatch.setenv("ROOMWATCH_BACKOFF_BASE_SECONDS", "0.2")
        if interval is not None:
            sim.state.cbhours.rate_limit.configure(enabled=True, interval=interval, tolerance=0.02)
            monkeypatch.setenv("ROOMWATCH_CBHOURS_MIN_INTERVAL_SECONDS", str(interval * 1.2))
        for name, value in env.items():
            monkeypatch.setenv(f"ROOMWATCH_{name}", value)
        return load_config()

    return configure
