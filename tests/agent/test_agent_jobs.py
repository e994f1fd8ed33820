"""``roomwatch run`` as real processes on one database: kill -9 and restart, restarts that keep
schedule changes, two agents that schedule once, and ``roomwatch crawl`` joining a running job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from roomwatch.config import Config
from storage.schedules import ensure_default_schedules
from tests.support import free_port, roomwatch, wait_until_healthy
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

TOKEN = "agent-test-token-0123456789abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEED = "/api/public/affiliates/"


class Agent:
    """One ``roomwatch run`` process, its API address and its output file."""

    def __init__(self, tmp: Path, name: str) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.output = tmp / f"{name}.out"
        env = {
            **os.environ,
            "ROOMWATCH_API_PORT": str(port),
            "ROOMWATCH_API_TOKEN": TOKEN,
            "ROOMWATCH_AGENT_MIN_INTERVAL_SECONDS": "1",
            "ROOMWATCH_AGENT_LOCK_RETRY_SECONDS": "1",
            "ROOMWATCH_AGENT_SHUTDOWN_GRACE_SECONDS": "1",
        }
        with self.output.open("w") as out:
            self.proc = roomwatch("run", env=env, stdout=out, stderr=subprocess.STDOUT)
        if not wait_until_healthy(self.base, self.proc, 30):
            self.proc.kill()
            pytest.fail(f"agent did not come up:\n{self.text()}")

    def text(self) -> str:
        return self.output.read_text()

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.base + path, params=params, headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers=AUTH, timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0, self.text()


@pytest.fixture
def agents(crawl_env: Config, tmp_path: Path) -> Iterator[Callable[[str], Agent]]:
    started: list[Agent] = []

    def start(name: str) -> Agent:
        started.append(Agent(tmp_path, name))
        return started[-1]

    yield start
    for agent in started:
        if agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()


@pytest.fixture
def quiet(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The default schedules, all paused: only what a test asks for runs."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_default_schedules(conn)
        conn.execute("UPDATE schedules SET paused = true")
        yield conn


def _until(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _job(agent: Agent, job_id: int) -> Any:
    return agent.get(f"/crawls/{job_id}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_the_agent_then_restart(
    agents: Callable[[str], Agent],
    quiet: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    sim.state.faults.set([FaultRule(prefix=FEED, delay=30, times=1)])
    first = agents("first")
    job_id = first.post("/crawls", {"spider": "affiliate"}).json()["job_id"]
    _until(lambda: sim.state.faults.state()[0].remaining == 0, what="the crawl to start")
    row = quiet.execute("SELECT status, pid FROM crawl_jobs WHERE job_id = %s", [job_id])
    status, crawl_pid = row.fetchone() or (None, 0)
    assert status == "running" and isinstance(crawl_pid, int)
    first.proc.kill()  # SIGKILL: no cleanup in the agent at all
    first.proc.wait()
    # The crawl dies with its supervisor (PR_SET_PDEATHSIG), however the agent ended.
    _until(lambda: _gone(crawl_pid), timeout=15, what="the crawl to die with its agent")

    second = agents("second")
    job = _job(second, job_id)
    assert (job["status"], job["finish_reason"]) == ("interrupted", "interrupted")

    again = second.post("/crawls", {"spider": "affiliate"}).json()["job_id"]
    final = _until(lambda: (j := _job(second, again))["status"] not in ("queued", "running") and j)
    assert final["status"] == "succeeded", final
    jobs = quiet.execute("SELECT status, count(*) FROM crawl_jobs GROUP BY status").fetchall()
    assert dict(jobs) == {"interrupted": 1, "succeeded": 1}
    polls = quiet.execute("SELECT job_id FROM source_polls").fetchall()
    assert polls == [(again,)]  # the killed crawl concluded nothing
    second.stop()


def test_a_schedule_change_survives_a_restart(
    agents: Callable[[str], Agent], quiet: psycopg.Connection[Any]
) -> None:
    first = agents("first")
    changed = httpx.patch(
        f"{first.base}/schedules/followers",
        json={"cron": "30 4 * * *", "paused": False},
        headers=AUTH,
    )
    assert changed.status_code == 200, changed.text
    refused = httpx.patch(
        f"{first.base}/schedules/followers", json={"interval_seconds": 0}, headers=AUTH
    )
    assert (refused.status_code, refused.json()["field"]) == (400, "interval_seconds")
    # Applied live: the scheduling agent plans the next 04:30 UTC.
    _until(
        lambda: next(s for s in first.get("/schedules")["items"] if s["name"] == "followers")[
            "next_run_at"
        ],
        what="the next run",
    )
    first.stop()

    second = agents("second")
    followers = next(s for s in second.get("/schedules")["items"] if s["name"] == "followers")
    assert (followers["cron"], followers["interval_seconds"]) == ("30 4 * * *", None)
    planned = _until(
        lambda: next(
            s for s in second.get("/status")["scheduler"]["schedules"] if s["name"] == "followers"
        )["next_run_at"],
        what="the plan after the restart",
    )
    assert planned.endswith("04:30:00Z") or "04:30:00" in planned
    assert "schedule followers: followers (30 4 * * *)" in second.text()
    second.stop()


def test_two_agents_on_one_database_schedule_once(
    agents: Callable[[str], Agent], quiet: psycopg.Connection[Any]
) -> None:
    quiet.execute(
        "UPDATE schedules SET paused = false, interval_seconds = 1 WHERE name = 'affiliate'"
    )
    first = agents("first")
    second = agents("second")
    status = first.get("/status")["scheduler"]
    assert status["active"] is True
    assert f"pid {first.proc.pid}" in status["holder"]
    assert second.get("/status")["scheduler"]["holder"] == status["holder"]

    def scheduled() -> int:
        row = quiet.execute("SELECT count(*) FROM crawl_jobs WHERE trigger = 'schedule'")
        return int((row.fetchone() or (0,))[0])

    _until(lambda: scheduled() >= 2, what="two scheduled crawls")
    assert "schedule affiliate: queued" in first.text()
    assert "schedule affiliate:" not in second.text()
    assert "standby" in second.text()

    first.stop()  # the lock is released: the standby takes over within its retry
    _until(lambda: "schedule affiliate: queued" in second.text(), what="the takeover")
    assert f"pid {second.proc.pid}" in second.get("/status")["scheduler"]["holder"]
    second.stop()


def test_roomwatch_crawl_joins_a_running_job(
    agents: Callable[[str], Agent],
    quiet: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    sim.state.faults.set([FaultRule(prefix=FEED, delay=3, times=1)])
    agent = agents("agent")
    job_id = agent.post("/crawls", {"spider": "affiliate"}).json()["job_id"]
    conflict = agent.post("/crawls", {"spider": "affiliate"})
    assert conflict.status_code == 409
    assert conflict.json()["existing_job_id"] == job_id
    cli = subprocess.run(
        [sys.executable, "-m", "agent.cli", "crawl", "affiliate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"(#{job_id}); following it" in cli.stderr
    assert cli.stdout.startswith(f"affiliate #{job_id} succeeded")
    agent.stop()
