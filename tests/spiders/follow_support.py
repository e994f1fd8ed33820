"""Helpers for the logged-in crawl tests: an account on the simulator, its stored session,
and what the database then says about follow state (crawls: ``tests.support.crawl``)."""

from __future__ import annotations

import time
from typing import Any

import psutil
import psycopg

from roomwatch.config import Config
from sessions.store import save_session
from tests.processes import marked_processes as find_marked
from tests.support import cookie_state
from upstream_sim.server import SimulatorServer

ACCOUNT = "alice"
PASSWORD = "correct-horse-battery-staple"
# LC_*: one of the few kinds of name the browser inherits (sessions.browser.browser_environment);
# not ROOMWATCH_*: the config would reject it, and the browser never gets those.
MARKER_VARIABLE = "LC_TEST_CRAWL_MARKER"


def log_in(
    sim: SimulatorServer,
    config: Config,
    db_url: str,
    *,
    online: int,
    offline: int,
    followers: int = 0,
    sessionid: str | None = None,
) -> str:
    """Creates the account with generated lists and stores a session for it; its sessionid."""
    site = sim.state.site
    site.add_account(
        ACCOUNT,
        PASSWORD,
        followed_online=online,
        followed_total=online + offline,
        followers=followers,
    )
    value = site.open_session(ACCOUNT, sessionid=sessionid)
    with psycopg.connect(db_url) as conn:
        save_session(conn, config, cookie_state(value), account=ACCOUNT, method="import")
    return value


def relation(db: psycopg.Connection[Any], column: str) -> dict[str, bool]:
    """username -> following/follower for every person with a known state."""
    rows = db.execute(f"SELECT username, {column} FROM persons WHERE {column} IS NOT NULL")
    return dict(rows.fetchall())


def events(db: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    """(username, kind) of every follow event."""
    rows = db.execute(
        "SELECT p.username, e.kind FROM follow_events e JOIN persons p USING (person_id)"
    ).fetchall()
    return {(name, kind) for name, kind in rows}


def session_status(db: psycopg.Connection[Any]) -> str:
    """The status of the newest stored session."""
    row = db.execute("SELECT status FROM login_sessions ORDER BY session_id DESC LIMIT 1")
    found = row.fetchone()
    assert found is not None
    return str(found[0])


def marked_processes(marker: str) -> list[psutil.Process]:
    """Live processes carrying this module's crawl marker (see tests/processes.py)."""
    return find_marked(MARKER_VARIABLE, marker)


def wait_for(condition: Any, seconds: float, what: str) -> None:
    """Polls ``condition()`` until true; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_for_first_page(sim: SimulatorServer, marker: str) -> None:
    """Until the marked crawl's Chromium runs and has asked for the followed-cams page."""
    wait_for(
        lambda: (
            sim.state.requests.count("/followed-cams/") > 0
            and any("chrom" in p.info["name"] for p in marked_processes(marker))
        ),
        60,
        "the crawl's Chromium to load the first page",
    )
