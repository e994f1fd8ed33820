"""The web UI tests' world: a small simulated account, crawled into a database, served by the
real agent. Built once per session by the ``ui_world`` fixture (tests/web/conftest.py).

What the simulator holds (fixed seeds, so every run sees the same names):

* an Affiliate feed of :data:`AFFILIATE_ROOMS` online rooms;
* the account :data:`ACCOUNT`, following :data:`FOLLOWED_ONLINE` of those rooms (online) and
  :data:`FOLLOWED_OFFLINE` rooms that are offline (so in no feed), followed by
  :data:`FOLLOWERS` persons: some it follows back, some in the feed, some seen nowhere else;
* one followed, online Affiliate room with markup in its display name (:data:`MARKUP_NAME`),
  subject (:data:`MARKUP_SUBJECT`) and a tag (:data:`MARKUP_TAG`): broadcaster-controlled text
  the pages must show as text;
* :data:`TROPHIES` CBHours trophy persons among the followed (three online, two offline) with
  :data:`ACTIVITY_DAYS` days of activity each;
* an Events API URL and a Stats API URL naming the account (on the simulator's host, token
  :data:`ROOM_TOKEN`), so the agent knows whose room My room is; the room's rows are written by
  the tests that read them.

The crawls run through the real runner, then every schedule is paused (nothing changes the
world behind a test's back) and the agent runs as ``python -m agent.cli run`` on that database.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

from roomwatch.config import Config, load_config
from sessions.store import save_session
from storage.schedules import ensure_default_schedules, list_schedules, update_schedule
from tests.processes import marked_processes
from tests.support import as_url, cookie_state, crawl, roomwatch, wait_until_healthy
from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.cbhours.data import LiveOnline
from upstream_sim.rooms import Room, RoomFactory
from upstream_sim.server import SimulatorServer
from upstream_sim.site.follow_lists import FollowLists, listed_room
from upstream_sim.state import SimulatorState

ACCOUNT = "uiowner"
PASSWORD = "ui-world-password"
TOKEN = "ui-world-api-token-0123456789abcdefghijklmnop"
"""The agent's API token: fixed, 40+ characters (the config refuses fewer than 32)."""
ROOM_TOKEN = "ui-world-room-token-0123456789"
"""The token of the world's Events and Stats URLs (a secret the pages must never show)."""
SEED = 10
AFFILIATE_ROOMS = 300
FOLLOWED_ONLINE = 12
FOLLOWED_OFFLINE = 28
FOLLOWERS = 20
TROPHIES = 5
ACTIVITY_DAYS = 10
MARKUP_NAME = "<b>bold</b>"
MARKUP_TAG = "<i>x</i>"
MARKUP_SUBJECT = "<script>alert(1)</script> <i>x</i> #markup"
CRAWL_ORDER = ("followed_cams", "followers", "affiliate", "cbhours_live", "cbhours_activity")
"""The demo's order: the logged-in lists first, they decide whom CBHours is asked about."""
MARKER_VARIABLE = "LC_TEST_UI_WORLD_MARKER"
"""Marks every process the world and the browser start (tests/processes.py). ``LC_``: the one
kind of name both a crawl process and its Chromium inherit (agent.runner, sessions.browser)."""
AGENT_START_SECONDS = 60
AGENT_STOP_SECONDS = 30
# The simulator's CBHours limit, and the crawls' pace just above it: the real 1 request/second
# would cost the session ~15 s for nothing the UI tests look at.
CBHOURS_INTERVAL = 0.1


@dataclass(frozen=True)
class People:
    """Who is who in the world, by username (each tuple in site order)."""

    followed_online: tuple[str, ...]
    followed_offline: tuple[str, ...]
    followers: tuple[str, ...]
    trophy: tuple[str, ...]
    trophy_online: tuple[str, ...]
    markup: str
    """The followed, online Affiliate room with markup in its name, subject and a tag."""
    affiliate: tuple[str, ...]
    """Every room of the Affiliate feed."""

    @property
    def followed(self) -> tuple[str, ...]:
        """Every followed username, online first."""
        return self.followed_online + self.followed_offline


@dataclass(frozen=True)
class UiWorld:
    """What ``ui_world`` yields: the running agent and how to reach it.

    Attributes:
        base_url: the agent's address, ``http://127.0.0.1:PORT`` (pages live under it).
        token: the API token (signs in to the UI too); never log it.
        api: a client for ``/api/v1`` with the bearer header.
        db_url: conninfo of the world's database (the agent's).
        sim: the running simulator.
        data_dir: the agent's data dir (sessions, images, job logs, ``agent.log``).
        account: the site account the stored login session belongs to.
        people: who is followed, a follower, a trophy person, the markup room.
        config: the config the crawls ran with (the agent reads the same settings).
        setup_seconds: how long building the world took.
    """

    base_url: str
    token: str = field(repr=False)
    api: httpx.Client
    db_url: str
    sim: SimulatorServer
    data_dir: Path
    account: str
    people: People
    config: Config
    setup_seconds: float


def simulated_world() -> tuple[SimulatorState, People]:
    """The simulator's state for the world (see the module docstring) and who is who in it."""
    state = SimulatorState(affiliate=AffiliateFeed(AFFILIATE_ROOMS, seed=SEED))
    feed = list(state.affiliate.rooms)
    # Spread over the ranking, so the followed rooms are not all on the feed's first rows.
    online = feed[:: AFFILIATE_ROOMS // FOLLOWED_ONLINE][:FOLLOWED_ONLINE]
    online[0] = state.affiliate.update_room(
        online[0].username,
        display_name=MARKUP_NAME,
        room_subject=MARKUP_SUBJECT,
        tags=(MARKUP_TAG, "markup"),
    )
    rng = random.Random(SEED)
    factory = RoomFactory(wm="sim")
    factory.reserve(room.username for room in feed)
    offline = [factory.make(rng) for _ in range(FOLLOWED_OFFLINE)]
    followed_names = {room.username for room in online}
    unfollowed_feed = [room for room in feed if room.username not in followed_names]
    nowhere = [factory.make(rng).username for _ in range(FOLLOWERS)]
    # Followers: 4 followed online and 3 followed offline follow back, 6 are live in the feed,
    # the rest appear nowhere but in the followers list.
    followers = [
        *(room.username for room in online[1:5]),
        *(room.username for room in offline[:3]),
        *(room.username for room in unfollowed_feed[3:9]),
    ]
    followers += nowhere[: FOLLOWERS - len(followers)]
    now = dt.datetime.now(dt.UTC)
    lists = FollowLists(
        [listed_room(room, online=True, following=True, rng=rng, now=now) for room in online],
        [listed_room(room, online=False, following=True, rng=rng, now=now) for room in offline],
        followers,
    )
    state.site.add_account(ACCOUNT, PASSWORD)
    state.site.set_follows(ACCOUNT, lists)

    trophy_online = online[1:4]
    trophy = [*trophy_online, *offline[: TROPHIES - len(trophy_online)]]
    state.cbhours.add_trophy(*(room.username for room in trophy))
    for room in trophy_online:
        state.cbhours.set_live(room.username, _live_row(room))
    today = now.date()
    for room in trophy:
        state.cbhours.seed_activity(
            room.username, today - dt.timedelta(days=ACTIVITY_DAYS - 1), today, online_chance=1.0
        )
    state.cbhours.rate_limit.configure(enabled=True, interval=CBHOURS_INTERVAL, tolerance=0.02)
    people = People(
        followed_online=tuple(room.username for room in online),
        followed_offline=tuple(room.username for room in offline),
        followers=tuple(followers),
        trophy=tuple(room.username for room in trophy),
        trophy_online=tuple(room.username for room in trophy_online),
        markup=online[0].username,
        affiliate=tuple(room.username for room in feed),
    )
    return state, people


def _live_row(room: Room) -> LiveOnline:
    """CBHours' live row for an online Affiliate room: the same room, plus a rank."""
    rank = max(1, int(60_000 / (room.num_users + 2) ** 0.85))
    return LiveOnline(
        rank=rank,
        grank=max(1, int(rank * 0.7)),
        viewers=room.num_users,
        followers=room.num_followers + 7,  # CBHours counts a little later than the feed
        current_show=room.current_show,
        room_subject=room.room_subject,
        tags=room.tags,
        is_new=room.is_new,
    )


def world_environment(
    sim: SimulatorServer, db_url: str, data_dir: Path, port: int
) -> dict[str, str]:
    """The ``ROOMWATCH_*`` settings of the crawls and the agent: the simulator's upstreams."""
    return {
        "ROOMWATCH_DATA_DIR": str(data_dir),
        "ROOMWATCH_DATABASE_URL": as_url(db_url),
        "ROOMWATCH_API_HOST": "127.0.0.1",
        "ROOMWATCH_API_PORT": str(port),
        "ROOMWATCH_API_TOKEN": TOKEN,
        "ROOMWATCH_CHATURBATE_URL": sim.base_url,
        "ROOMWATCH_AFFILIATE_URL": sim.affiliate_url,
        "ROOMWATCH_AFFILIATE_WM": "uiworld",
        "ROOMWATCH_CBHOURS_URL": sim.cbhours_url,
        "ROOMWATCH_CBHOURS_MIN_INTERVAL_SECONDS": str(CBHOURS_INTERVAL * 1.2),
        "ROOMWATCH_IMAGES_ALLOWED_HOSTS": "127.0.0.1",
        "ROOMWATCH_EVENTS_URL": f"{sim.base_url}/events/{ACCOUNT}/{ROOM_TOKEN}/",
        "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1",
        "ROOMWATCH_STATS_URL": f"{sim.base_url}/statsapi/?username={ACCOUNT}&token={ROOM_TOKEN}",
        "ROOMWATCH_STATS_ALLOWED_HOSTS": "127.0.0.1",
        # Live values stay "recent" for the whole session: the world holds still, so a slow
        # run does not turn the Affiliate colours into stale grey halfway through.
        "ROOMWATCH_MERGE_RECENT_MINUTES": "240",
    }


def fill_database(config: Config, db_url: str, sim: SimulatorServer) -> None:
    """Stores a login session for the account, runs every crawl (each must succeed), then
    pauses every schedule.

    Raises:
        AssertionError: a crawl did not succeed (with its error and log path).
    """
    sessionid = sim.state.site.open_session(ACCOUNT)
    with psycopg.connect(db_url) as conn:
        save_session(
            conn, config, cookie_state(sessionid), account=ACCOUNT, method="import", status="valid"
        )
    for spider in CRAWL_ORDER:
        job = crawl(config, db_url, spider)
        assert job.status == "succeeded", (
            f"{spider}: {job.status} ({job.finish_reason}: {job.error_message}); log {job.log_path}"
        )
    with psycopg.connect(db_url) as conn:
        ensure_default_schedules(conn)
        for schedule in list_schedules(conn):
            update_schedule(conn, schedule.name, paused=True)


def world_config(environment: dict[str, str]) -> Config:
    """The config of ``environment`` alone (not this process's: nothing leaks to other tests).

    Crawl processes get it on their stdin from the runner, never from the environment."""
    return load_config(environment)


class AgentProcess:
    """``python -m agent.cli run`` with the world's settings; its output goes to a file in the
    data dir (a pipe nobody reads would fill up and stall the agent in a long session)."""

    def __init__(self, environment: dict[str, str], data_dir: Path) -> None:
        self.log_path = data_dir / "agent.log"
        self._log = self.log_path.open("wb")
        self.process = roomwatch(
            "run", env={**os.environ, **environment}, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_until_healthy(self, base_url: str) -> None:
        """Returns once ``/api/v1/health`` answers 200.

        Raises:
            AssertionError: the agent exited or did not answer within the time (with its log).
        """
        if not wait_until_healthy(f"{base_url}/api/v1", self.process, AGENT_START_SECONDS):
            raise AssertionError(f"the agent did not come up:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL for it and whatever it started if it does not end in time;
        returns its exit code (negative: the signal that ended it)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(AGENT_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                kill_tree(self.process.pid)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        """What the agent wrote so far (it never writes the token)."""
        return self.log_path.read_text(errors="replace")


def kill_tree(pid: int) -> None:
    """SIGKILL for a process and all its descendants."""
    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


def leftover_processes(marker: str, seconds: float = 10.0) -> list[str]:
    """Processes still carrying ``marker`` after ``seconds`` (they are killed), as names."""
    deadline = time.monotonic() + seconds
    while left := marked_processes(MARKER_VARIABLE, marker):
        if time.monotonic() > deadline:
            names = [f"{p.info['name']} ({p.pid})" for p in left]
            for process in left:
                kill_tree(process.pid)
            return names
        time.sleep(0.1)
    return []
