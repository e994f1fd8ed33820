"""Helpers more than one test package uses: ports, database URLs, cookies, crawls.

Test modules never import from each other; what two of them share lives here (or in a
conftest.py, for fixtures).
"""

from __future__ import annotations

import socket
from typing import Any

import msgspec
from playwright.async_api import StorageState
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent.runner import CrawlRunner
from roomwatch.config import Config
from storage.jobs import Job
from upstream_sim.server import SimulatorServer
from upstream_sim.site.state import SiteSwitches


def free_port() -> int:
    """A loopback port nothing listens on right now (a server started next will likely get it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
