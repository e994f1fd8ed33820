"""The ``scrapyd`` runner backend against two real Scrapyd servers on loopback (their own dirs,
SQLite job storage, basic auth), the project's egg deployed to both, every spider crawling the
simulator into one PostgreSQL; a node killed mid-crawl, a cancel. The two servers, the
database and the simulator are shared by the module (tests look at their own jobs' rows)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from agent.runner import CrawlRunner
from agent.runtime import make_runner
from agent.scrapyd_runner import ScrapydRunner
from control_api import node_logs
from control_api.app import create_app
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config, load_config
from storage.jobs import (
    Job,
    create_job,
    get_job,
    interrupt_abandoned,
    lock_job,
    request_cancel,
    start_job,
)
from tests.agent.scrapyd_support import PASSWORD, ScrapydServer
from tests.factories import AUTH, TOKEN
from tests.spiders.follow_support import ACCOUNT, log_in, wait_for
from tests.support import crawl_environment, free_port, fresh_database, roomwatch
from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

ROOT = Path(__file__).parents[2]
ROOMS = 300
TROPHIES = ["trophy_one", "trophy_two"]


class Cluster:
    """One install: the database, the simulator, two Scrapyd nodes and the agent's config."""

    def __init__(self, db_url: str, sim: SimulatorServer, nodes: list[ScrapydServer]) -> None:
        self.db_url = db_url
        self.sim = sim
        self.nodes = nodes
        self.secrets: list[str] = []
        self.agent_env: dict[str, str] = {}
        self.config: Config = load_config({})
        self.deployed: subprocess.CompletedProcess[str] | None = None

    def runner(self) -> ScrapydRunner:
        runner = make_runner(self.config, self.db_url)
        assert isinstance(runner, ScrapydRunner)
        return runner

    def crawl(self, spider: str, *, poll_seconds: float | None = None, **args: str) -> Job:
        runner = self.runner()
        if poll_seconds is not None:
            runner.poll_seconds = poll_seconds
        return runner.run(runner.submit(spider, args, "api").job_id)

    def node_of(self, job: Job) -> ScrapydServer:
        """The node the job was dispatched to (its log is served there)."""
        assert job.log_path is not None
        (node,) = [n for n in self.nodes if job.log_path.startswith(f"http://{n.name}/")]
        return node


@pytest.fixture(scope="module")
def cluster(pg_server: str, migrated_template: str) -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-cluster-"))
    state = SimulatorState(affiliate=AffiliateFeed(ROOMS, seed=7))
    nodes: list[ScrapydServer] = []
    with fresh_database(pg_server, migrated_template) as db_url, SimulatorServer(state) as sim:
        env = crawl_environment(db_url, sim, data_dir) | {
            "ROOMWATCH_CBHOURS_URL": sim.cbhours_url,
            "ROOMWATCH_CBHOURS_MIN_INTERVAL_SECONDS": "0.12",
            "ROOMWATCH_BACKOFF_BASE_SECONDS": "0.2",
            "ROOMWATCH_BACKOFF_CAP_SECONDS": "1",
            "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1",
            "ROOMWATCH_EVENTS_TIMEOUT_SECONDS": "1",
            "ROOMWATCH_STATS_ALLOWED_HOSTS": "127.0.0.1",
        }
        # The owner's account: a login session (stored encrypted with the install's key, which
        # the nodes read from the shared data dir), its Events and Stats URLs, CBHours persons.
        log_in(sim, load_config(env), db_url, online=2, offline=2, followers=5)
        env["ROOMWATCH_EVENTS_URL"] = sim.events_url(ACCOUNT)
        env["ROOMWATCH_STATS_URL"] = sim.stats_url(ACCOUNT)
        sim.state.cbhours.rate_limit.configure(enabled=True, interval=0.1, tolerance=0.02)
        sim.state.cbhours.add_trophy(*TROPHIES)
        today = dt.datetime.now(dt.UTC).date()
        for person in TROPHIES:
            sim.state.cbhours.seed_activity(person, today - dt.timedelta(days=20), today)
        node_env = {
            name: value for name, value in os.environ.items() if not name.startswith("ROOMWATCH_")
        } | env
        nodes = [ScrapydServer(node_env), ScrapydServer(node_env)]
        try:
            for node in nodes:
                node.start()
            cluster = Cluster(db_url, sim, nodes)
            agent = {
                **env,
                "ROOMWATCH_RUNNER": "scrapyd",
                "ROOMWATCH_SCRAPYD_URLS": ",".join(node.url for node in nodes),
                "ROOMWATCH_SCRAPYD_POLL_SECONDS": "0.2",
                "ROOMWATCH_SCRAPYD_TIMEOUT_SECONDS": "30",  # the machine may be busy
                "ROOMWATCH_IMAGES_STORE": "database",
            }
            cluster.agent_env = agent
            cluster.config = load_config(agent)
            cluster.secrets = [
                PASSWORD,
                cluster.config.events.url.rsplit("/", 2)[-2],  # the Events API token
                cluster.config.stats.url.rsplit("token=", 1)[-1],
                env["ROOMWATCH_DATABASE_URL"],
            ]
            # The egg goes to both nodes as an operator sends it (test_roomwatch_deploy_...).
            cluster.deployed = _roomwatch_deploy(agent)
            assert cluster.deployed.returncode == 0, cluster.deployed.stderr
            yield cluster
        finally:
            for node in nodes:
                node.kill()
    for folder in [data_dir, *(node.home for node in nodes)]:
        shutil.rmtree(folder, ignore_errors=True)


def _roomwatch_deploy(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``roomwatch deploy ARGS`` with this environment (``ROOMWATCH_*`` from ``env`` only)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ROOMWATCH_")}
    cli = roomwatch(
        "deploy",
        *args,
        env=inherited | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = cli.communicate(timeout=600)
    return subprocess.CompletedProcess(cli.args, cli.returncode, out, err)


class LongCrawl:
    """A ``room_events`` job of ten minutes run by the cluster's runner in a thread, once its
    crawl runs on its node and has reported progress."""

    def __init__(self, cluster: Cluster, poll_seconds: float | None = None) -> None:
        self.finished: list[Job] = []
        self.thread = threading.Thread(
            target=lambda: self.finished.append(
                cluster.crawl("room_events", poll_seconds=poll_seconds, run_seconds="600")
            ),
            daemon=True,
        )
        self.thread.start()
        with psycopg.connect(cluster.db_url, autocommit=True) as conn:
            self.job_id = _wait_running(conn, "room_events")
            running = get_job(conn, self.job_id)
        assert running is not None
        self.node = cluster.node_of(running)
        wait_for(lambda: bool(self.node.crawl_processes()), 30, "the crawl to run on its node")

    def end(self) -> Job:
        """The final row, once the runner returned it."""
        self.thread.join(60)
        (job,) = self.finished
        return job


def test_the_runner_setting_chooses_the_backend(cluster: Cluster) -> None:
    assert isinstance(cluster.runner(), ScrapydRunner)
    local = load_config({"ROOMWATCH_DATA_DIR": str(cluster.config.data_path)})
    assert type(make_runner(local, cluster.db_url)) is CrawlRunner


def test_roomwatch_deploy_sent_the_egg_to_every_node(cluster: Cluster) -> None:
    """The fixture's ``roomwatch deploy``: a line per node (host:port, the version, the
    spiders it lists now), each node holding that version and listing every spider."""
    assert cluster.deployed is not None
    lines = cluster.deployed.stdout.splitlines()
    assert len(lines) == len(cluster.nodes), cluster.deployed.stdout
    for line, node in zip(lines, cluster.nodes, strict=True):
        found = re.fullmatch(
            rf"{re.escape(node.name)}: roomwatch (\d{{10}}_0_1_0_g[0-9a-f]{{12}}(?:_dirty)?) "
            rf"deployed, {len(SPIDERS)} spiders",
            line,
        )
        assert found, line
        assert node.api("GET", "listversions.json?project=roomwatch")["versions"] == [found[1]]
        listed = node.api("GET", "listspiders.json?project=roomwatch")["spiders"]
        assert isinstance(listed, list) and sorted(listed) == sorted(SPIDERS)
    assert PASSWORD not in cluster.deployed.stdout + cluster.deployed.stderr


def test_roomwatch_deploy_names_each_node_that_failed_and_deploys_the_others(
    cluster: Cluster,
) -> None:
    good, refusing = cluster.nodes
    dead = f"127.0.0.1:{free_port()}"
    wrong = "wrong-pa55word-never-shown"
    urls = [good.url, good.url.replace(PASSWORD, wrong).replace(good.name, refusing.name)]
    env = cluster.agent_env | {"ROOMWATCH_SCRAPYD_URLS": ",".join([*urls, f"http://{dead}"])}
    before = good.api("GET", "listversions.json?project=roomwatch")["versions"]
    done = _roomwatch_deploy(env)
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"{good.name}: roomwatch ") and line.endswith(" spiders")
    assert done.stderr.splitlines() == [
        "roomwatch: deploy failed on 2 of 3 nodes:",
        f"  {refusing.name}: Scrapyd node {refusing.name} refused the credentials (HTTP 401): "
        "check scrapyd.username/password or the node URL",
        f"  {dead}: Scrapyd node {dead} did not answer addversion.json (ConnectError)",
    ]
    after = good.api("GET", "listversions.json?project=roomwatch")["versions"]
    assert isinstance(before, list) and isinstance(after, list) and len(after) == len(before) + 1
    assert PASSWORD not in done.stdout + done.stderr and wrong not in done.stdout + done.stderr


def test_roomwatch_deploy_build_egg_writes_the_egg_alone(cluster: Cluster, tmp_path: Path) -> None:
    """``--build-egg FILE`` needs no node; without it, and without the scrapyd runner, the
    command refuses. The checkout gets no build/ or egg-info either way."""
    checkout = sorted(path.name for path in ROOT.iterdir())
    local = {"ROOMWATCH_DATA_DIR": str(tmp_path / "data")}
    refused = _roomwatch_deploy(local)
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        'roomwatch: roomwatch deploy uploads to the nodes of runner = "scrapyd" (runner is '
        "'local', 0 node(s) in scrapyd.urls)"
    )
    egg = tmp_path / "roomwatch.egg"
    built = _roomwatch_deploy(local, "--build-egg", str(egg))
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(egg) as contents:
        names = set(contents.namelist())
        entry_points = contents.read("EGG-INFO/entry_points.txt").decode()
    assert {
        "crawler/project.py",
        "spiders/affiliate.py",
        "storage/migrations/0001_baseline.sql",
    } <= names
    assert not any(name.startswith("tests/") for name in names)
    assert "settings = crawler.project" in entry_points
    assert sorted(path.name for path in ROOT.iterdir()) == checkout


def test_a_node_jobs_log_is_read_from_its_node_through_the_api(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /crawls/{id}/log`` of a job run on a node: the tail of the log the node serves
    (read from its end in ranges of at least FIRST_BLOCK bytes: small here, so several)."""
    monkeypatch.setattr(node_logs, "FIRST_BLOCK", 1024)
    job = cluster.crawl("room_stats")
    assert job.status == "succeeded", job.error_message
    node = cluster.node_of(job)
    wait_for(
        lambda: node.api("GET", f"status.json?job={job.job_id}")["currstate"] == "finished",
        30,
        "the crawl's process to end (its last log lines)",
    )
    text = (node.home / "logs" / "roomwatch" / "room_stats" / f"{job.job_id}.log").read_text()
    assert 5 < text.count("\n") < 5000 and len(text) > 4 * 1024
    with TestClient(create_app(cluster.config, cluster.db_url, TOKEN, "test")) as client:
        client.headers.update(AUTH)
        url = f"/api/v1/crawls/{job.job_id}/log"
        tail = client.get(url, params={"lines": 5})
        assert tail.status_code == 200, tail.text
        assert tail.text == "".join(text.splitlines(keepends=True)[-5:])
        assert client.get(url, params={"lines": 5000}).text == text
        # A node that has no such log: 404 naming the node only.
        with psycopg.connect(cluster.db_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE crawl_jobs SET log_path = %s WHERE job_id = %s",
                [f"http://{node.name}/logs/roomwatch/room_stats/0.log", job.job_id],
            )
        missing = client.get(url)
        assert missing.status_code == 404
        assert missing.json()["detail"] == (
            f"Scrapyd node {node.name} has no log of crawl job #{job.job_id} (HTTP 404)"
        )


def test_roomwatch_crawl_runs_on_a_node_with_the_scrapyd_runner(cluster: Cluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMWATCH_")}
    cli = roomwatch(
        "crawl", "room_stats", env=env | cluster.agent_env, stdout=subprocess.PIPE, text=True
    )
    out, _ = cli.communicate(timeout=120)
    assert cli.returncode == 0, out
    assert "room_stats #" in out and "succeeded: 1 room_stats" in out
    assert re.search(
        r"^log: http://127\.0\.0\.1:\d+/logs/roomwatch/room_stats/\d+\.log$", out, re.M
    )


@pytest.mark.parametrize(
    ("spider", "args", "stored"),
    [
        ("affiliate", {}, {"affiliate_rooms": ROOMS, "affiliate_complete_polls": 1}),
        ("followed_cams", {}, None),
        ("followers", {}, None),
        ("cbhours_live", {"usernames": ",".join(TROPHIES)}, None),
        ("cbhours_activity", {"usernames": ",".join(TROPHIES)}, None),
        ("room_events", {"until_idle": "true"}, None),
        ("room_stats", {}, {"room_stats": 1}),
    ],
)
def test_every_spider_runs_on_a_node_into_the_shared_database(
    cluster: Cluster, spider: str, args: dict[str, str], stored: dict[str, int] | None
) -> None:
    if spider == "room_events":
        sent = httpx.post(
            f"{cluster.sim.base_url}/_sim/events/{ACCOUNT}", json={"burst": 20}, timeout=60
        )
        assert sent.status_code == 200, sent.text
    job = cluster.crawl(spider, **args)
    assert job.status == "succeeded", job.error_message
    node = cluster.node_of(job)
    assert job.log_path == f"http://{node.name}/logs/roomwatch/{spider}/{job.job_id}.log"
    # Progress and stats reached the row, as from a local crawl.
    assert job.requests > 0
    assert job.stats["finish_reason"] == "finished"
    assert sum(job.items.values()) > 0
    if stored is not None:
        assert job.items == stored
    # The crawl logged on its node, where Scrapyd serves it; no secret went there, or into
    # the node's own log (which lists every crawl's arguments).
    log = (node.home / "logs" / "roomwatch" / spider / f"{job.job_id}.log").read_text()
    assert f"job {job.job_id}: {spider} crawl starting" in log
    for text in (log, node.output.read_text(), str(job.args), str(job.stats)):
        assert not [secret for secret in cluster.secrets if secret in text]


def test_jobs_go_to_the_node_with_the_most_free_slots(cluster: Cluster) -> None:
    long = LongCrawl(cluster)
    idle = next(node for node in cluster.nodes if node is not long.node)
    picked = cluster.runner().pick_node()
    assert picked is not None and picked.name == idle.name
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        request_cancel(conn, long.job_id)
    assert long.end().status == "cancelled"


def test_a_cancelled_crawl_stops_on_its_node(cluster: Cluster) -> None:
    long = LongCrawl(cluster)
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        request_cancel(conn, long.job_id)
    job = long.end()
    assert (job.status, job.error_message) == ("cancelled", "cancelled on request")
    assert long.node.api("GET", f"status.json?job={job.job_id}")["currstate"] == "finished"
    assert not long.node.crawl_processes()


def test_a_node_killed_mid_crawl_ends_its_job_interrupted_and_the_next_run_goes_elsewhere(
    cluster: Cluster,
) -> None:
    long = LongCrawl(cluster)
    long.node.kill()
    try:
        job = long.end()
        assert job.status == "interrupted"
        assert job.error_message == (
            f"Scrapyd node {long.node.name} stopped answering during this crawl"
        )
        after = cluster.crawl("room_events", until_idle="true")
        assert after.status == "succeeded", after.error_message
        assert cluster.node_of(after) is not long.node
    finally:
        long.node.start()  # the module's other tests keep their two nodes


def test_a_node_that_forgot_a_job_ends_it_interrupted(cluster: Cluster) -> None:
    """A restarted node knows nothing of the crawl it ran (killed with it): the row ends
    ``interrupted`` at the first look, not ``running`` for ever. (Polls 2 s apart: the node
    is back before the runner would give it up as down.)"""
    long = LongCrawl(cluster, poll_seconds=2.0)
    long.node.kill()
    long.node.start()
    job = long.end()
    assert job.status == "interrupted"
    assert f"Scrapyd node {long.node.name} no longer knows this job" in (job.error_message or "")


def _wait_running(conn: psycopg.Connection[Any], spider: str) -> int:
    """The id of the ``spider`` job once it runs and its crawl has reported progress."""
    found: list[int] = []

    def running() -> bool:
        row = conn.execute(
            "SELECT job_id FROM crawl_jobs WHERE spider = %s AND status = 'running' "
            "AND requests > 0",
            [spider],
        ).fetchone()
        if row:
            found.append(int(row[0]))
        return bool(row)

    wait_for(running, 60, f"a running {spider} crawl")
    return found[-1]


def test_a_crawl_on_a_node_stops_itself_once_its_agent_is_gone(cluster: Cluster) -> None:
    """The agent dies (its job lock goes with its connection) and a sweep ends the row
    ``interrupted``: the crawl on the node sees it and ends, with no agent to cancel it."""
    node = cluster.nodes[0]
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        job = create_job(conn, "room_events", {"run_seconds": "600"}, "api")
        agent = psycopg.connect(cluster.db_url, autocommit=True)
        assert lock_job(agent, job.job_id)
        assert start_job(agent, job.job_id, os.getpid(), "elsewhere")
        answer = node.api(
            "POST",
            "schedule.json",
            data={
                "project": "roomwatch",
                "spider": "room_events",
                "jobid": str(job.job_id),
                "run_seconds": "600",
            },
        )
        assert answer["status"] == "ok", answer
        _wait_running(conn, "room_events")
        agent.close()  # its server process lets the lock go a moment later
        swept: list[int] = []
        wait_for(
            lambda: bool(swept.extend(gone.job_id for gone in interrupt_abandoned(conn)) or swept),
            10,
            "the sweep to interrupt the job",
        )
        assert swept == [job.job_id]
        wait_for(
            lambda: node.api("GET", f"status.json?job={job.job_id}")["currstate"] == "finished",
            30,
            "the crawl to stop on its node",
        )
        final = get_job(conn, job.job_id)
        assert final is not None and final.status == "interrupted"
