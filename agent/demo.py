"""``roomwatch demo``: a first look without any account anywhere.

Starts the upstream simulator (an Affiliate feed, CBHours with some trophy models, a site account
``demo`` that follows and is followed by simulated broadcasters), points a separate demo data dir
(``data_dir/demo``, with its own embedded PostgreSQL) at it (the owner's Events and Stats API
URLs too, with the simulated account's tokens), logs in to the simulated site with
the form, runs every crawl once, then runs the agent with its API until SIGINT/SIGTERM. The real
data dir and a configured database URL are never touched.

The crawls overlap as the agent's own would (one browser crawl at a time): the Affiliate feed,
which needs no login and no followed persons, runs beside the login and the other crawls. The
simulated CBHours admits one request a second, or one per ``cbhours.min_interval_seconds`` if
that is shorter (the demo test's way to a quick run).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from agent.runner import CrawlRunner
from agent.runtime import migrate, run_agent
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config, load_config
from sessions.login import form_login
from sessions.store import save_session
from storage.database import connect, open_database
from storage.jobs import Job
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

DEMO_ACCOUNT = "demo"
# Followed persons with a CBHours trophy: each costs the activity backfill about two requests
# at CBHours's one request a second, so they are few (a first look in about half a minute).
TROPHIES = 6
# Browser crawls first: they mark who is followed, which decides whom CBHours is asked about;
# the live stats find the trophy persons whose activity is asked for. The Affiliate feed depends
# on nothing and runs beside them all, and so do the owner's room's crawls after it (SIDE_CRAWLS,
# one after another): the Stats API, then the Events API stream read up to its first quiet
# answer (the agent then keeps it running).
CRAWL_ORDER = (
    "followed_cams",
    "followers",
    "affiliate",
    "cbhours_live",
    "cbhours_activity",
    "room_stats",
    "room_events",
)
SIDE_CRAWLS = ("affiliate", "room_stats", "room_events")
CRAWL_ARGS = {"room_events": {"until_idle": "true"}}
# The demo room's history: a broadcast with a busy room's events (tips, visitors, chat, follows).
ROOM_EVENTS = 400


def _simulated_world(password: str) -> SimulatorState:
    state = SimulatorState()
    state.affiliate.reset(count=2_000, seed=1)
    account = state.site.add_account(
        DEMO_ACCOUNT, password, followed_online=15, followed_total=120, followers=40
    )
    state.events.broadcast_start(DEMO_ACCOUNT)
    state.events.burst(DEMO_ACCOUNT, ROOM_EVENTS, seed=1)
    trophy = account.follows.followed_names()[:TROPHIES]
    state.cbhours.add_trophy(*trophy)
    today = dt.datetime.now(dt.UTC).date()
    for name in trophy:
        state.cbhours.set_live(name, state.cbhours.random_online(name))
        state.cbhours.seed_activity(name, today - dt.timedelta(days=20), today)
    return state


def _demo_environment(config: Config, sim: SimulatorServer) -> dict[str, str]:
    """Settings for the demo: its own data dir and embedded database, upstreams on loopback."""
    return {
        "ROOMWATCH_DATA_DIR": str(config.data_path / "demo"),
        "ROOMWATCH_DATABASE_URL": "",
        "ROOMWATCH_CHATURBATE_URL": sim.base_url,
        "ROOMWATCH_AFFILIATE_URL": sim.affiliate_url,
        "ROOMWATCH_AFFILIATE_WM": "demo",
        "ROOMWATCH_CBHOURS_URL": sim.cbhours_url,
        "ROOMWATCH_IMAGES_ALLOWED_HOSTS": "127.0.0.1",
        "ROOMWATCH_EVENTS_URL": sim.events_url(DEMO_ACCOUNT),
        "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1",
        "ROOMWATCH_STATS_URL": sim.stats_url(DEMO_ACCOUNT),
        "ROOMWATCH_STATS_ALLOWED_HOSTS": "127.0.0.1",
    }


def run_demo(config: Config) -> None:
    """Runs the demo until interrupted (see the module docstring)."""
    password = secrets.token_urlsafe(12)
    with SimulatorServer(_simulated_world(password)) as sim:
        # The demo's settings go through the environment, read by load_config() like any other
        # (crawl processes get the resulting config from their runner).
        os.environ.update(_demo_environment(config, sim))
        demo = load_config()
        limit = sim.state.cbhours.rate_limit
        limit.configure(interval=min(limit.interval, demo.cbhours.min_interval_seconds))
        print(f"upstream simulator on {sim.base_url}; demo data in {demo.data_path}", flush=True)
        with open_database(demo) as conninfo:
            migrate(conninfo, demo)
            runner = CrawlRunner(demo, conninfo)
            with ThreadPoolExecutor(max_workers=1) as side:
                side_crawls = side.submit(lambda: [_crawl(runner, s) for s in SIDE_CRAWLS])
                _log_in(demo, conninfo, password)
                for spider in CRAWL_ORDER:
                    if spider not in SIDE_CRAWLS:
                        _crawl(runner, spider)
                side_crawls.result()
        run_agent(demo)


def _log_in(demo: Config, conninfo: str, password: str) -> None:
    """Logs in to the simulated site with the form and stores the session for the crawls."""
    capture = asyncio.run(form_login(demo, DEMO_ACCOUNT, password))
    with connect(conninfo) as conn:
        save_session(conn, demo, capture.state, account=DEMO_ACCOUNT, method="form", status="valid")
    print("logged in to the simulated site as 'demo'", flush=True)


def _crawl(runner: CrawlRunner, spider: str) -> Job:
    """Runs one crawl to its end and prints how it went."""
    job = runner.run(runner.submit(spider, CRAWL_ARGS.get(spider, {}), "cli").job_id)
    items = ", ".join(f"{n} {kind}" for kind, n in sorted(job.items.items()))
    print(f"  {SPIDERS[spider].description}: {job.status} ({items or 'nothing'})", flush=True)
    return job
