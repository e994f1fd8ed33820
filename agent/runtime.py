"""``roomwatch run``: one process that owns the database, applies migrations and serves the API.

Later issues add the scheduler and the crawl runner to this process; their start and stop belong
here, in this order: database, migrations, settings, (scheduler, runner), API.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from types import FrameType
from urllib.parse import urlsplit

import uvicorn

from control_api.app import create_app
from control_api.auth import load_or_create_token, token_path
from roomwatch.config import Config
from storage.database import connect, open_database
from storage.migrator import apply_migrations
from storage.settings import sync_settings

log = logging.getLogger(__name__)


def database_label(config: Config) -> str:
    """Names the database for people, without credentials."""
    if not config.database.url:
        return f"embedded ({config.data_path / 'postgres'})"
    parts = urlsplit(config.database.url)
    return f"{parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path}"


def migrate(conninfo: str, config: Config) -> list[str]:
    """Applies pending migrations and writes the settings the SQL side reads."""
    with connect(conninfo) as conn:
        applied = apply_migrations(conn)
        sync_settings(conn, config)
    return applied


class _Server(uvicorn.Server):
    """uvicorn, minus its habit of re-raising SIGTERM after shutdown.

    uvicorn re-sends the signal it caught once it has stopped, which would kill this process
    before the embedded database and (later) the crawl runner are shut down. We set the same
    "please exit" flag from our own handlers and return normally instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        def request_exit(signum: int, frame: FrameType | None) -> None:
            self.should_exit = True

        previous = {
            sig: signal.signal(sig, request_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_agent(config: Config) -> None:
    """Runs until SIGINT/SIGTERM; the embedded database is stopped on the way out."""
    token = load_or_create_token(config)
    with open_database(config) as conninfo:
        for name in migrate(conninfo, config):
            log.info("applied migration %s", name)
        app = create_app(config, conninfo, token, database_label(config))
        where = (
            "ROOMWATCH_API_TOKEN" if config.api.token else f"{token_path(config)} (roomwatch token)"
        )
        print(f"roomwatch API on http://{config.api.host}:{config.api.port}/api/v1", flush=True)
        print(f"API token: {where}", flush=True)
        server = _Server(
            uvicorn.Config(
                app,
                host=config.api.host,
                port=config.api.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                log_config=None,
            )
        )
        server.run()
        if not server.started:
            raise SystemExit(1)
