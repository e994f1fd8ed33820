"""The crawl worker with the real runner, the real affiliate spider and the simulator.

Jobs go in through the control API (as they do in production: the API writes rows, the worker
runs them) and are followed to their end; a slow simulator keeps a crawl running while it is
cancelled, killed or caught by a shutdown.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from agent.runner import CrawlRunner
from agent.worker import Worker
from control_api.app import create_app
from roomwatch.config import Config
from storage.browser_lock import take_account_lock
from storage.database import connect
from storage.jobs import Job, finish_job, get_job, lock_job, start_job
from storage.login_sessions import insert_login_session
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

TOKEN = "worker-test-token-0123456789abcdefghijklmnop"
FEED = "/api/public/affiliates/"


@pytest.fixture
def client(crawl_env: Config, db_url: str) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(crawl_env, db_url, TOKEN, "test")) as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


@pytest.fixture
def worker(crawl_env: Config, db_url: str) -> Iterator[Worker]:
    started = Worker(CrawlRunner(crawl_env, db_url), db_url, shutdown_grace=0.5)
    started.start()
    yield started
    started.stop()


def _wait_for(client: TestClient[Litestar], job_id: int, test: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + 20
    while True:
        job = client.get(f"/api/v1/crawls/{job_id}").json()
        if test(job):
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.1)


def _pid(db_url: str, job_id: int) -> int:
    with connect(db_url) as conn:
        job = get_job(conn, job_id)
    assert job is not None and job.pid is not None
    return job.pid


def _slow_feed(sim: SimulatorServer) -> None:
    """The first feed page takes 6 s: long enough to act on a running crawl, short enough
    that a graceful stop (which lets the request finish) is quick."""
    sim.state.faults.set([FaultRule(prefix=FEED, delay=6, times=1)])


def test_a_job_queued_over_the_api_runs_to_succeeded(
    client: TestClient[Litestar], worker: Worker
) -> None:
    created = client.post("/api/v1/crawls", json={"spider": "affiliate"})
    assert created.status_code == 202
    job = _wait_for(client, created.json()["job_id"], lambda j: j["status"] not in ("queued",))
    done = _wait_for(client, job["job_id"], lambda j: j["status"] not in ("queued", "running"))
    assert done["status"] == "succeeded", done
    assert done["items"] == {"affiliate_rooms": 1234, "affiliate_complete_polls": 1}
    assert done["pages"] == 3 and done["requests"] >= 3 and done["finish_reason"] == "finished"
    log = client.get(f"/api/v1/crawls/{job['job_id']}/log", params={"lines": 50})
    assert log.status_code == 200 and log.text.endswith("succeeded (finished)\n")


def test_cancel_of_a_running_crawl_stops_its_process(
    client: TestClient[Litestar], worker: Worker, sim: SimulatorServer, db_url: str
) -> None:
    _slow_feed(sim)
    job_id = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
    _wait_for(client, job_id, lambda j: j["status"] == "running" and j["requests"] >= 0)
    _wait_for_request(sim)
    pid = _pid(db_url, job_id)
    assert client.post(f"/api/v1/crawls/{job_id}/cancel").json()["cancel_requested_at"]
    done = _wait_for(client, job_id, lambda j: j["status"] != "running")
    assert (done["status"], done["finish_reason"]) == ("cancelled", "cancelled")
    _wait_gone(pid)
    # The spider is free again.
    assert client.post("/api/v1/crawls", json={"spider": "affiliate"}).status_code == 202


def test_kill_9_of_a_crawl_fails_its_job_and_the_next_run_is_fine(
    client: TestClient[Litestar], worker: Worker, sim: SimulatorServer, db_url: str
) -> None:
    _slow_feed(sim)
    job_id = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
    _wait_for(client, job_id, lambda j: j["status"] == "running")
    _wait_for_request(sim)
    os.kill(_pid(db_url, job_id), signal.SIGKILL)
    done = _wait_for(client, job_id, lambda j: j["status"] != "running")
    assert (done["status"], done["finish_reason"]) == ("failed", "crashed")
    assert "exited with code -9" in done["error_message"]

    again = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
    final = _wait_for(client, again, lambda j: j["status"] not in ("queued", "running"))
    assert final["status"] == "succeeded", final


def test_shutdown_cancels_running_crawls_after_the_grace(
    client: TestClient[Litestar], crawl_env: Config, db_url: str, sim: SimulatorServer
) -> None:
    _slow_feed(sim)
    worker = Worker(CrawlRunner(crawl_env, db_url), db_url, shutdown_grace=0.5)
    worker.start()
    job_id = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
    _wait_for(client, job_id, lambda j: j["status"] == "running")
    _wait_for_request(sim)
    pid = _pid(db_url, job_id)
    worker.stop()
    job = client.get(f"/api/v1/crawls/{job_id}").json()
    assert (job["status"], job["finish_reason"]) == ("cancelled", "shutdown")
    assert not psutil.pid_exists(pid)


def _wait_gone(pid: int) -> None:
    """The job is recorded first; its process tree is stopped right after (TERM, then KILL)."""
    deadline = time.monotonic() + 15
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the crawl process is still alive"
        time.sleep(0.1)


def _wait_for_request(sim: SimulatorServer) -> None:
    """The crawl process is up and waiting on the slow feed (the delay rule has fired)."""
    deadline = time.monotonic() + 20
    while sim.state.faults.state()[0].remaining > 0:
        assert time.monotonic() < deadline, "the crawl never asked for the feed"
        time.sleep(0.05)


class BlockingRunner(CrawlRunner):
    """Runs no process: holds each job running until released, and records overlaps."""

    def __init__(self, config: Config, conninfo: str) -> None:
        super().__init__(config, conninfo)
        self.release = threading.Event()
        self.running: set[str] = set()
        self.together: list[set[str]] = []
        self.lock = threading.Lock()

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            assert lock_job(conn, job_id) and start_job(conn, job_id, os.getpid(), "-")
            job = get_job(conn, job_id)
            assert job is not None
            with self.lock:
                self.running.add(job.spider)
                self.together.append(set(self.running))
            self.release.wait(10)
            time.sleep(0.3)
            with self.lock:
                self.running.discard(job.spider)
            finish_job(conn, job_id, "succeeded", finish_reason="finished")
            final = get_job(conn, job_id)
            assert final is not None
            return final


def test_browser_crawls_run_one_at_a_time_and_the_others_alongside(
    client: TestClient[Litestar], crawl_env: Config, db_url: str
) -> None:
    runner = BlockingRunner(crawl_env, db_url)
    worker = Worker(runner, db_url, max_concurrent=4)
    worker.start()
    try:
        for spider in ("followed_cams", "followers", "affiliate", "cbhours_live"):
            assert client.post("/api/v1/crawls", json={"spider": spider}).status_code == 202
        deadline = time.monotonic() + 10
        while len(runner.together) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert runner.together[-1] == {"followed_cams", "affiliate", "cbhours_live"}
        runner.release.set()
        deadline = time.monotonic() + 10
        while "followers" not in runner.running and len(runner.together) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        runner.release.set()
        worker.stop()
    assert not any({"followed_cams", "followers"} <= seen for seen in runner.together)
    statuses = {j["spider"]: j["status"] for j in client.get("/api/v1/crawls").json()["items"]}
    assert set(statuses.values()) == {"succeeded"}


class NodesRunner(BlockingRunner):
    """A :class:`BlockingRunner` whose browsers run elsewhere (as the Scrapyd runner's): it
    records the (spider, account) of each job it starts, and any two browser crawls of one
    account at once (a job naming none is ``default_account``'s, as its crawl would choose)."""

    one_browser_at_a_time = False

    def __init__(self, config: Config, conninfo: str, default_account: str) -> None:
        super().__init__(config, conninfo)
        self.default_account = default_account
        self.pairs: list[tuple[str, str | None]] = []
        self.accounts: list[str] = []
        self.overlaps: list[str] = []

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            job = get_job(conn, job_id)
        assert job is not None
        browser = job.spider in ("followed_cams", "followers")
        account = job.account or self.default_account
        with self.lock:
            self.pairs.append((job.spider, job.account))
            if browser:
                if account in self.accounts:
                    self.overlaps.append(account)
                self.accounts.append(account)
        try:
            return super().run(job_id, on_progress)
        finally:
            if browser:
                with self.lock:
                    self.accounts.remove(account)


def _wait_until(test: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not test():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_with_browsers_on_nodes_browser_crawls_of_different_accounts_run_at_once(
    client: TestClient[Litestar], crawl_env: Config, db_url: str
) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(db_url, autocommit=True) as holder,
    ):
        for name in ("studio_a", "studio_b", "studio_c"):
            conn.execute("INSERT INTO accounts (account) VALUES (%s)", [name])
        # studio_b's newest usable session: a job naming no account is studio_b's.
        insert_login_session(conn, account="studio_b", method="import", state=b"x", status="valid")
        # Some other crawl (another agent's, a roomwatch crawl) holds studio_c's browser.
        assert take_account_lock(holder, "studio_c")
        runner = NodesRunner(crawl_env, db_url, default_account="studio_b")
        worker = Worker(runner, db_url, max_concurrent=8)
        jobs: list[tuple[str, str | None]] = [
            ("followed_cams", "studio_c"),
            ("followed_cams", "studio_a"),
            ("followers", "studio_a"),
            ("followers", "studio_b"),
            ("followed_cams", None),
            ("affiliate", None),
        ]
        ids: dict[tuple[str, str | None], int] = {}
        for spider, account in jobs:
            args = {"account": account} if account else {}
            answer = client.post("/api/v1/crawls", json={"spider": spider, "args": args})
            assert answer.status_code == 202, answer.text
            ids[spider, account] = answer.json()["job_id"]
        worker.start()
        try:
            _wait_until(lambda: len(runner.pairs) == 3, "three crawls at once")
            started = set(runner.pairs)
            # Two accounts' browsers at once; studio_a's second and the account-less one
            # (studio_b's, busy) wait; studio_c's waits for the lock's holder.
            assert started == {
                ("followed_cams", "studio_a"),
                ("followers", "studio_b"),
                ("affiliate", None),
            }
            status = {key: _status(client, job_id) for key, job_id in ids.items()}
            assert status["followed_cams", "studio_c"] == "queued"
            assert status["followers", "studio_a"] == "queued"
            assert status["followed_cams", None] == "queued"
            holder.close()  # studio_c's lock goes with its session
            _wait_until(lambda: len(runner.pairs) == 4, "studio_c's crawl once its lock is free")
            assert runner.pairs[3] == ("followed_cams", "studio_c")
            runner.release.set()
            _wait_until(
                lambda: all(_status(client, i) == "succeeded" for i in ids.values()),
                "every job to succeed",
            )
        finally:
            runner.release.set()
            worker.stop()
    assert len(runner.pairs) == len(jobs)
    assert runner.overlaps == []  # never two browser crawls of one account at once


def _status(client: TestClient[Litestar], job_id: int) -> str:
    return str(client.get(f"/api/v1/crawls/{job_id}").json()["status"])
