"""``roomwatch run``: one process that owns the database, schedules and runs crawls, serves the API.

Start order: database, migrations, settings, interrupt abandoned jobs (left running by a dead
agent or ``roomwatch crawl``), default schedules, crawl worker, alert notifier, scheduler, API.
SIGINT/SIGTERM stop the API, then the rest in reverse: the scheduler stops firing, the worker
gives running crawls ``agent.shutdown_grace_seconds`` and then cancels them, and the embedded
database stops last. A second signal during that wait ends the process at once.

The agent owns the embedded database (``storage/embedded.py``): it starts it, or adopts one a
dead agent left running, checks it every :data:`DATABASE_CHECK_SECONDS` and starts it again
if it died, and stops it on the way out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from urllib.parse import urlsplit

import psycopg
import uvicorn

from agent.alerts import AlertNotifier
from agent.runner import CrawlRunner, Runner
from agent.scheduler import Scheduler, Upkeep
from agent.scrapyd_runner import ScrapydRunner
from agent.worker import Worker, sweep_abandoned
from control_api.app import create_app
from control_api.auth import load_or_create_token, token_path
from roomwatch.catalog import held_spiders, stream_spider_accounts
from roomwatch.config import Config
from roomwatch.errors import EmbeddedDatabaseError
from sessions.store import carry_session_files
from storage.database import connect
from storage.embedded import EmbeddedPostgres
from storage.maintenance import apply_retention, prune_jobs, refresh_due_summaries
from storage.migrator import apply_migrations
from storage.schedules import ensure_default_schedules, sync_account_schedules
from storage.settings import sync_settings

log = logging.getLogger(__name__)
RETENTION = dt.timedelta(hours=6)
SUMMARY_REFRESH = dt.timedelta(seconds=10)
ACCOUNT_SCHEDULES = dt.timedelta(minutes=1)
DATABASE_CHECK_SECONDS = 3.0


def database_label(config: Config) -> str:
    """Names the database for people, without credentials."""
    if not config.database.url:
        return f"embedded ({config.data_path / 'postgres'})"
    parts = urlsplit(config.database.url)
    return f"{parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path}"


def migrate(conninfo: str, config: Config) -> list[str]:
    """Applies pending migrations, writes the settings the SQL side reads, and carries session
    files from before migration 0018 into the database (a no-op once there are none)."""
    with connect(conninfo) as conn:
        applied = apply_migrations(conn)
        sync_settings(conn, config)
        carry_session_files(conn, config)
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


def apply_retention_now(conninfo: str, config: Config) -> list[str]:
    """Drops history past its retention, and finished crawl jobs past theirs with the logs
    they left on this machine (run by the scheduling agent, every few hours)."""
    with connect(conninfo) as conn:
        dropped = apply_retention(conn, config.database, events=config.events)
        pruned, logs = prune_jobs(conn, config.database)
    if dropped:
        log.info("retention: dropped %s", ", ".join(dropped))
    removed = 0
    for job_id in logs:
        # Named from the job's id, never from the row's path: only this agent's own logs go.
        try:
            config.job_log(job_id).unlink()
            removed += 1
        except FileNotFoundError:
            pass  # ran elsewhere, or removed by hand
        except OSError as exc:
            log.warning("retention: cannot remove the log of crawl job %d: %s", job_id, exc)
    if pruned:
        log.info("retention: %d finished crawl jobs pruned, %d logs removed", pruned, removed)
    return dropped


def refresh_summaries_now(conninfo: str) -> int:
    """Recomputes the person summaries that came due (the scheduling agent, every 10 s)."""
    with connect(conninfo) as conn:
        refreshed = refresh_due_summaries(conn)
    log.debug("person summaries: %d recomputed", refreshed)
    return refreshed


def sync_account_schedules_now(conninfo: str, streams: dict[str, list[str]]) -> list[str]:
    """Gives each account its own schedules once a spider can read several (the scheduling
    agent, every minute: a login for a new account is picked up without a restart)."""
    with connect(conninfo) as conn:
        added = sync_account_schedules(conn, streams)
    if added:
        log.info("added per-account schedules: %s", ", ".join(added))
    return added


def make_runner(config: Config, conninfo: str) -> Runner:
    """The runner backend ``runner`` names: ``local`` (a process per crawl here) or
    ``scrapyd`` (the nodes of ``scrapyd.urls``; each that cannot take jobs now is logged)."""
    if config.runner == "local":
        return CrawlRunner(config, conninfo)
    runner = ScrapydRunner(config, conninfo)
    for problem in runner.check_nodes():
        log.warning("%s", problem)
    return runner


@contextlib.contextmanager
def crawl_services(config: Config, conninfo: str) -> Iterator[None]:
    """Runs the worker, the alert notifier and the scheduler for the life of the block.

    They stop in reverse order, even when the block fails: the scheduler stops firing first,
    then the worker lets running crawls end (or cancels them after the grace).
    """
    with connect(conninfo) as conn:
        added = ensure_default_schedules(conn)
    if added:
        log.info("added default schedules: %s", ", ".join(added))
    streams = stream_spider_accounts(config)
    sync_account_schedules_now(conninfo, streams)
    runner = make_runner(config, conninfo)
    notifier = AlertNotifier(conninfo, config.alerts)
    worker = Worker(
        runner,
        conninfo,
        max_concurrent=config.agent.max_concurrent_crawls,
        shutdown_grace=config.agent.shutdown_grace_seconds,
        on_finished=notifier.job_finished,
    )
    scheduler = Scheduler(
        conninfo,
        runner.submit,
        config.agent.lock_retry_seconds,
        upkeep=[
            Upkeep(
                "retention",
                lambda: apply_retention_now(conninfo, config),
                RETENTION,
            ),
            Upkeep("summaries", lambda: refresh_summaries_now(conninfo), SUMMARY_REFRESH),
            Upkeep(
                "account_schedules",
                lambda: sync_account_schedules_now(conninfo, streams),
                ACCOUNT_SCHEDULES,
            ),
        ],
        held=held_spiders(config),
        streams=streams,
    )
    worker.start()
    try:
        notifier.start()
        try:
            scheduler.start()
            try:
                yield
            finally:
                scheduler.stop()
        finally:
            notifier.stop()
    finally:
        worker.stop()


class DatabaseKeeper:
    """The agent's watch over the embedded server: restarts it if it died, takes it over if
    its owner (a ``roomwatch`` CLI command that ran when this agent started) has ended."""

    def __init__(self, server: EmbeddedPostgres, interval: float = DATABASE_CHECK_SECONDS):
        self._server = server
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="database-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done = self._server.supervise()
            except (EmbeddedDatabaseError, psycopg.Error, OSError) as exc:
                log.error("embedded PostgreSQL is down and did not start again (%s); retrying", exc)
                continue
            if done:
                log.warning("%s", done)


@contextlib.contextmanager
def agent_database(config: Config) -> Iterator[str]:
    """The agent's database: the configured URL as is, or the embedded server, owned and kept."""
    if config.database.url:
        yield config.database.url
        return
    server = EmbeddedPostgres(config.data_path, config.database.embedded_os_user)
    conninfo = server.start()
    keeper = DatabaseKeeper(server)
    keeper.start()
    try:
        yield conninfo
    finally:
        keeper.stop()
        server.stop()


def run_agent(config: Config) -> None:
    """Runs until SIGINT/SIGTERM; the embedded database is stopped on the way out."""
    token = load_or_create_token(config)
    with agent_database(config) as conninfo:
        for name in migrate(conninfo, config):
            log.info("applied migration %s", name)
        sweep_abandoned(conninfo)
        with crawl_services(config, conninfo):
            _serve(config, conninfo, token)


def _url_host(host: str) -> str:
    """The host as a browser can reach it: a wildcard bind is reached on loopback, IPv6 in []."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (printing where a bind is reachable)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _serve(config: Config, conninfo: str, token: str) -> None:
    """The API in the foreground until a signal asks it to stop."""
    app = create_app(config, conninfo, token, database_label(config))
    where = "ROOMWATCH_API_TOKEN" if config.api.token else f"{token_path(config)} (roomwatch token)"
    site = f"http://{_url_host(config.api.host)}:{config.api.port}"
    print(f"roomwatch web UI on {site}/ (sign in with the API token)", flush=True)
    print(f"roomwatch API on {site}/api/v1", flush=True)
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
