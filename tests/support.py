"""Helpers more than one test package uses: ports, database URLs, cookies, crawls, the
``roomwatch`` command as a process, a loopback HTTP recorder.

Test modules never import from each other; what two of them share lives here (or in a
conftest.py, for fixtures).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import httpx
import msgspec
import psycopg
from playwright.async_api import StorageState
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent.runner import CrawlRunner
from roomwatch.config import Config
from storage.jobs import Job
from storage.records import RoomEvent, RoomStatsRow
from storage.writers import write_room_stats
from upstream_sim.server import SimulatorServer
from upstream_sim.site.state import SiteSwitches


class CbhoursCrawls(Protocol):
    """The ``cbhours`` fixture (tests/conftest.py): call it for a CBHours crawl's config."""

    def __call__(self, *, interval: float | None = ..., **env: str) -> Config: ...


def free_port() -> int:
    """A loopback port nothing listens on right now (a server started next will likely get it).

    Under pytest-xdist each worker takes only ports of its own share (by ``port // 2`` modulo
    the number of workers: Linux hands out odd ports first), so two workers never race for one.
    """
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    for _ in range(1000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port // 2 % workers == index:
            break
    return port


def as_url(conninfo: str) -> str:
    """A test database's conninfo as the postgres URL the config expects."""
    params = conninfo_to_dict(conninfo)
    port = f"&port={params['port']}" if params.get("port") else ""
    return f"postgresql://{params['user']}@/{params['dbname']}?host={params['host']}{port}"


def cookie_state(sessionid: str, host: str = "127.0.0.1") -> StorageState:
    """A Playwright storage state holding one ``sessionid`` cookie for the simulator."""
    return {
        "cookies": [
            {
                "name": "sessionid",
                "value": sessionid,
                "domain": host,
                "path": "/",
                "expires": -1,
                "httpOnly": True,
                "secure": False,
                "sameSite": "Lax",
            }
        ],
        "origins": [],
    }


def crawl(config: Config, db_url: str, spider: str, **args: Any) -> Job:
    """One crawl job of ``spider`` through the runner (its own process, which gets ``config``
    on its stdin, not from the environment), to its end."""
    runner = CrawlRunner(config, db_url)
    return runner.run(runner.submit(spider, args, "cli").job_id)


def store_stats_count(
    db_url: str, account: str, followers: int, *, age: dt.timedelta = dt.timedelta(0)
) -> None:
    """Stores a Stats API answer counting ``followers`` of ``account``, observed ``age`` ago
    (by the database's clock), as the ``room_stats`` spider would."""
    row = RoomStatsRow(
        username=account,
        **dict.fromkeys(
            (
                "num_viewers",
                "num_registered_viewers",
                "num_tokened_viewers",
                "token_balance",
                "tips_in_last_hour",
                "votes_up",
                "votes_down",
                "satisfaction_score",
                "last_broadcast",
                "time_online",
            )
        ),
        num_followers=followers,
        raw=msgspec.json.encode({"username": account, "num_followers": followers}),
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()
        assert now is not None
        write_room_stats(conn, row, observed_at=now[0] - age)


def roomwatch(*args: str, env: Mapping[str, str], **popen: Any) -> subprocess.Popen[Any]:
    """``roomwatch ARGS`` (``python -m agent.cli``) as a process of its own with exactly ``env``;
    ``popen`` goes to ``subprocess.Popen`` (where its output goes, ``text``)."""
    return subprocess.Popen([sys.executable, "-m", "agent.cli", *args], env=env, **popen)


def wait_until_healthy(api: str, process: subprocess.Popen[Any], seconds: float) -> bool:
    """True once ``{api}/health`` answers 200; False if ``process`` ended or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


@contextlib.contextmanager
def fresh_database(pg_server: str, template: str | None) -> Iterator[str]:
    """Conninfo of a new database on the server (a clone of ``template``, if given), dropped
    after the block."""
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


def crawl_environment(db_url: str, sim: SimulatorServer, data_dir: Path) -> dict[str, str]:
    """The ``ROOMWATCH_*`` variables of an install whose crawls read the simulator and write to
    ``db_url`` (the ``crawl_env`` fixture's, a Scrapyd node's)."""
    return {
        "ROOMWATCH_DATA_DIR": str(data_dir),
        "ROOMWATCH_DATABASE_URL": as_url(db_url),
        "ROOMWATCH_AFFILIATE_URL": sim.affiliate_url,
        "ROOMWATCH_AFFILIATE_WM": "testwm",
        "ROOMWATCH_CHATURBATE_URL": sim.base_url,
    }


def with_db(conninfo: str, dbname: str) -> str:
    """The same server's conninfo for another database."""
    params = conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def set_switches(sim: SimulatorServer, **changes: Any) -> SiteSwitches:
    """Changes some of the simulated site's switches; the switches now."""
    switches: SiteSwitches = msgspec.structs.replace(sim.state.site.switches, **changes)
    sim.state.site.set_switches(switches)
    return switches


class HttpRecorder:
    """A loopback HTTP endpoint (a context manager) that records the JSON body of every POST and
    answers ``status``, whatever the path: a webhook, an Apprise ``json://`` target."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = status
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                recorder.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(recorder.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        """``host:port``, for URLs of any scheme and path."""

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def room_event(method: str, at: dt.datetime, seq: int = 0, **fields: Any) -> RoomEvent:
    """A decoded Events API event (``storage.records.RoomEvent``) at ``at``, its id
    ``<milliseconds>-<seq>`` as the API makes them; any other column through ``fields``."""
    values: dict[str, Any] = dict.fromkeys(RoomEvent.__struct_fields__)
    millis = int(at.timestamp() * 1000)
    values.update(
        event_id=f"{millis}-{seq}",
        occurred_at=dt.datetime.fromtimestamp(millis / 1000, dt.UTC),
        method=method,
        raw=msgspec.json.encode({"method": method, "id": f"{millis}-{seq}", "object": {}}),
    )
    values.update(fields)
    return RoomEvent(**values)


def insert_room_events(
    conn: psycopg.Connection[Any], account: str, events: list[RoomEvent]
) -> None:
    """Stores events of ``account`` as plain rows (the months' partitions first): the room
    reads are tested on the contract's table, whoever writes it."""
    if not events:
        return
    times = [event.occurred_at for event in events]
    conn.execute(
        "SELECT roomwatch_ensure_partitions('room_events', 'month', %s, %s)",
        [min(times), max(times)],
    )
    columns = [f for f in RoomEvent.__struct_fields__ if f != "raw"]
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO room_events (account, {', '.join(columns)}, raw) "
            f"VALUES (%s, {', '.join(['%s'] * len(columns))}, %s::jsonb)",
            [[account, *(getattr(e, c) for c in columns), e.raw.decode()] for e in events],
        )


def insert_room_stats(
    conn: psycopg.Connection[Any], account: str, observed_at: dt.datetime, **fields: int | None
) -> None:
    """One Stats API answer of ``account`` (columns of ``room_stats`` through ``fields``)."""
    names = list(fields)
    conn.execute(
        f"INSERT INTO room_stats (account, observed_at, raw{''.join(', ' + n for n in names)}) "
        f"VALUES (%s, %s, '{{}}'::jsonb{', %s' * len(names)})",
        [account, observed_at, *fields.values()],
    )
