"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test, and
the upstream simulator with an environment that points crawls at it."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from roomwatch.config import Config, load_config
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from tests.support import as_url, with_db
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
    yield from _fresh_database(pg_server, None)


@pytest.fixture
def db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """Conninfo of a new, fully migrated database of this test's own."""
    yield from _fresh_database(pg_server, migrated_template)


@pytest.fixture(scope="session")
def session_db_url(pg_server: str, migrated_template: str) -> Iterator[str]:
    """Conninfo of a migrated database shared by the whole session (a world that is built once,
    e.g. the web UI tests' agent); tests using it must not change what others rely on."""
    yield from _fresh_database(pg_server, migrated_template)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to this test's own migrated database."""
    with psycopg.connect(db_url) as conn:
        yield conn


def _fresh_database(pg_server: str, template: str | None) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield with_db(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


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
