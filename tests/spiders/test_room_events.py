"""The room_events spider: the owner's Events API stream from the simulator into a real database,
as crawl processes of their own (the format and the writer: tests/formats, tests/storage).

The guarantees under test: every event the simulator sent is stored exactly once, whatever
happens to the crawl (a cancel, a restart, ``kill -9`` in a burst, a database outage), and
follows change ``persons.follower`` within one long-poll round trip. Times are waited for,
never asserted.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg import sql

from agent.runner import CrawlRunner
from agent.scheduler import Scheduler
from agent.worker import Worker
from roomwatch.catalog import held_spiders, stream_spider_accounts
from roomwatch.config import Config, load_config
from storage.alerts import read_alerts
from storage.jobs import Job, get_job, request_cancel
from storage.schedules import ensure_default_schedules, sync_account_schedules
from storage.settings import register_stream_accounts
from tests.factories import AUTH
from tests.support import crawl
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

Conn = psycopg.Connection[Any]
OWNER = "room_owner"
WRONG_TOKEN = "Wr0ngT0kenQx7Zp"


@pytest.fixture
def db(db_url: str) -> Iterator[Conn]:
    """The test's own look at the database, in autocommit: an open transaction of the test
    would hold locks the writer needs (new monthly partitions) and see a stale count."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def stream(crawl_env: Config, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Config:
    """``crawl_env`` with the simulator's Events API for the site account ``room_owner``: a
    one-second hold (so an idle stream still turns over) and short back-offs."""
    sim.state.site.add_account(OWNER, "pw", followers=3)
    env = {
        "ROOMWATCH_EVENTS_URL": sim.events_url(OWNER),
        "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1",
        "ROOMWATCH_EVENTS_TIMEOUT_SECONDS": "1",
        "ROOMWATCH_BACKOFF_BASE_SECONDS": "0.2",
        "ROOMWATCH_BACKOFF_CAP_SECONDS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config()


class Background:
    """One room_events job run by a real crawl runner in a thread (a process of its own)."""

    def __init__(self, config: Config, db_url: str, **args: str) -> None:
        runner = CrawlRunner(config, db_url)
        self.job_id = runner.submit("room_events", args, "cli").job_id
        self.db_url = db_url
        self.final: Job | None = None
        self.thread = threading.Thread(target=self._run, args=[runner], daemon=True)
        self.thread.start()

    def _run(self, runner: CrawlRunner) -> None:
        self.final = runner.run(self.job_id)

    def job(self) -> Job:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            job = get_job(conn, self.job_id)
        assert job is not None
        return job

    def cancel(self) -> Job:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            request_cancel(conn, self.job_id)
        return self.wait()

    def wait(self, seconds: float = 120) -> Job:
        self.thread.join(seconds)
        assert self.final is not None, "the crawl did not end"
        return self.final


def _until(condition: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _append(sim: SimulatorServer, **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{sim.base_url}/_sim/events/{OWNER}", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _sent(sim: SimulatorServer) -> list[str]:
    """The ids of every event the simulator sent to the room, oldest first."""
    answer = httpx.get(f"{sim.base_url}/_sim/events/{OWNER}", timeout=60).json()
    return [event["id"] for event in answer["events"]]


def _stored(db: Conn) -> list[str]:
    return [
        str(row[0])
        for row in db.execute(
            "SELECT event_id FROM room_events WHERE account = %s", [OWNER]
        ).fetchall()
    ]


def _count(db: Conn) -> int:
    return len(_stored(db))


def _position(db: Conn) -> str | None:
    row = db.execute(
        "SELECT last_event_id FROM room_event_streams WHERE account = %s", [OWNER]
    ).fetchone()
    return None if row is None else str(row[0])


def _exactly_once(db: Conn, sim: SimulatorServer) -> None:
    """Every event sent is stored, none twice, and the position is the last one sent."""
    sent, stored = _sent(sim), _stored(db)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert sorted(stored) == sorted(sent)
    assert _position(db) == sent[-1]


def _polls(sim: SimulatorServer) -> list[dict[str, str]]:
    """The query of every Events API request the simulator answered, in order."""
    return [dict(parse_qsl(r.query)) for r in sim.state.requests.entries("/events/")]


def test_events_before_and_during_a_run_are_stored_once_and_a_restart_resumes(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer
) -> None:
    _append(sim, burst=250, seed=1)
    run = Background(stream, db_url)
    _until(lambda: _count(db) == 250, "the events sent before the run")
    _append(sim, burst=300, seed=2, methods=["tip", "chatMessage"])
    _append(sim, events=[{"method": "roomSubjectChange", "object": {"subject": "hi #new"}}])
    _until(lambda: _count(db) == 551, "the events sent during the run")
    job = run.cancel()  # ends the stream within one long poll
    assert job.status == "cancelled"
    _exactly_once(db, sim)
    stopped_at = _position(db)

    sim.state.requests.clear()
    _append(sim, burst=40, seed=3)
    again = crawl(stream, db_url, "room_events", until_idle="true")
    assert again.status == "succeeded", again.error_message
    assert again.items == {"room_events": 40}
    _exactly_once(db, sim)
    first = _polls(sim)[0]
    assert first == {"i": stopped_at, "timeout": "1"}  # right after the last stored event


def test_kill_9_in_a_burst_then_a_restart_loses_and_repeats_nothing(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer
) -> None:
    httpx.put(
        f"{sim.base_url}/_sim/events", json={"max_events_per_response": 25}
    ).raise_for_status()
    run = Background(stream, db_url)
    _until(lambda: run.job().pid is not None and run.job().status == "running", "the crawl")
    appending = threading.Event()

    def burst() -> None:  # the room keeps sending while the crawl dies
        for seed in range(40):
            _append(sim, burst=100, seed=seed)
            appending.set()

    sender = threading.Thread(target=burst)
    sender.start()
    _until(lambda: _count(db) > 0, "the first stored page")
    pid = run.job().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    at_kill = _count(db)
    killed = run.wait()
    sender.join()
    assert killed.status == "failed"
    assert killed.finish_reason == "crashed"
    assert at_kill < 4000  # it died mid-stream
    stored = _stored(db)
    assert len(stored) == len(set(stored))
    again = crawl(stream, db_url, "room_events", until_idle="true")
    assert again.status == "succeeded", again.error_message
    _exactly_once(db, sim)


def _break_database(admin: Conn, dbname: str, allow: bool) -> None:
    """No new connection to ``dbname`` (and every open one cut), or connections again."""
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(dbname), sql.SQL("true" if allow else "false")
        )
    )
    if not allow:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        )


def test_a_database_outage_loses_no_event_whether_the_run_fails_or_rides_it_out(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, pg_server: str
) -> None:
    _append(sim, burst=120, seed=4)
    run = Background(stream, db_url)
    _until(lambda: _count(db) == 120, "the first events")
    dbname = db.info.dbname
    with psycopg.connect(pg_server, autocommit=True) as admin:  # another database's session
        try:
            _break_database(admin, dbname, allow=False)
            _append(sim, burst=80, seed=5)  # answered while nothing can be stored
            time.sleep(3)
        finally:
            _break_database(admin, dbname, allow=True)
    with psycopg.connect(db_url, autocommit=True) as fresh:  # the outage cut the test's own
        # A write that met the outage fails the run (and nothing after it is stored); one that
        # waited for a connection of the pool until the database was back stores the page.
        _until(
            lambda: run.job().status != "running" or _count(fresh) == 200,
            "the run to fail, or to store what came during the outage",
        )
        job = run.cancel() if run.job().status == "running" else run.wait()
        assert job.status in ("failed", "cancelled"), job.error_message
        if job.status == "failed":  # its reason is in its log (the job row may only say
            # "crashed": the crawl process could not record its end while the database was away)
            assert job.log_path is not None
            with open(job.log_path, encoding="utf-8") as log:
                assert "storing room_events failed" in log.read()
        stored = _stored(fresh)
        assert len(stored) == len(set(stored))
        _append(sim, burst=30, seed=6)
        again = crawl(stream, db_url, "room_events", until_idle="true")
        assert again.status == "succeeded", again.error_message
        _exactly_once(fresh, sim)


def _follower(db: Conn, username: str) -> bool | None:
    row = db.execute("SELECT follower FROM persons WHERE username = %s", [username]).fetchone()
    return None if row is None else row[0]


def test_follows_change_the_follower_flag_within_one_long_poll(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 5-second hold: the poll after the one that brings a follow waits longer than any write,
    # so counting polls tells whether the follow took one round trip or more.
    monkeypatch.setenv("ROOMWATCH_EVENTS_TIMEOUT_SECONDS", "5")
    run = Background(load_config(), db_url)
    _until(lambda: len(_polls(sim)) >= 1, "the stream to wait on the simulator")
    polls = len(_polls(sim))
    sim.state.site.add_followers(OWNER, ["fresh_fan"])  # the site's world sends the event
    _until(lambda: _follower(db, "fresh_fan") is True, "the new follower")
    # The waiting poll answered with it; the next one may already be out, no more.
    assert len(_polls(sim)) - polls <= 2
    polls = len(_polls(sim))
    sim.state.site.remove_followers(OWNER, ["fresh_fan"])
    _until(lambda: _follower(db, "fresh_fan") is False, "the lost follower")
    assert len(_polls(sim)) - polls <= 2
    kinds = db.execute(
        "SELECT kind FROM follow_events e JOIN persons p USING (person_id) "
        "WHERE p.username = 'fresh_fan' ORDER BY e.occurred_at"
    ).fetchall()
    assert [k for (k,) in kinds] == ["new_follower", "lost_follower"]
    assert run.cancel().status == "cancelled"


def test_the_token_stays_out_of_logs_job_rows_and_the_api(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, app: Litestar
) -> None:
    token = stream.events.token
    _append(sim, burst=30, seed=7)
    # More 503s in a row than backoff.max_retries: the stream waits them out (a long outage
    # alone fails it); the retries are logged, never the URL.
    sim.state.faults.set([FaultRule(prefix="/events/", status=503, times=6)])
    job = crawl(stream, db_url, "room_events", until_idle="true")
    assert job.status == "succeeded", job.error_message
    assert job.retries == 6
    assert job.items == {"room_events": 30}
    assert job.log_path is not None
    with open(job.log_path, encoding="utf-8") as log:
        text = log.read()
    assert "Events API" in text
    with TestClient(app) as client:
        client.headers.update(AUTH)
        tail = client.get(f"/api/v1/crawls/{job.job_id}/log").text
        row = client.get(f"/api/v1/crawls/{job.job_id}").text
    for where in (text, tail, row, msgspec.json.encode(job).decode()):
        assert token not in where
        assert f"/events/{OWNER}/" not in where


def test_a_wrong_token_fails_at_once_with_an_alert_and_the_schedule_backs_off(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMWATCH_EVENTS_URL", sim.events_url(OWNER, WRONG_TOKEN))
    config = load_config()
    job = crawl(config, db_url, "room_events")
    assert job.status == "failed"
    assert job.error_message is not None
    assert "the Events API refused the token (HTTP 401)" in job.error_message
    assert "events.url" in job.error_message
    assert WRONG_TOKEN not in job.error_message
    assert job.log_path is not None
    with open(job.log_path, encoding="utf-8") as log:
        assert WRONG_TOKEN not in log.read()
    alerts = [a for a in read_alerts(db, 3) if a.kind == "token_refused"]
    assert [(a.subject, a.key) for a in alerts] == [
        ("room_events", f"token_refused:room_events:{job.job_id}")
    ]
    assert WRONG_TOKEN not in alerts[0].message

    # The keep-running schedule, with a real worker: failures are restarted after 10 s, 20 s...
    ensure_default_schedules(db)
    db.execute("UPDATE schedules SET paused = name <> 'room_events'")
    runner = CrawlRunner(config, db_url)
    worker = Worker(runner, db_url, max_concurrent=2)
    scheduler = Scheduler(db_url, runner.submit, held=held_spiders(config))
    worker.start()
    scheduler.start()
    try:
        time.sleep(25)
    finally:
        scheduler.stop()
        worker.stop()
    started = db.execute(
        "SELECT count(*) FROM crawl_jobs WHERE spider = 'room_events' AND trigger = 'schedule'"
    ).fetchone()
    assert started is not None
    # Right after the failure above: one start 10 s after it, the next 20 s after that one.
    assert 1 <= started[0] <= 2
    keys = {a.key for a in read_alerts(db, 3) if a.kind == "token_refused"}
    assert keys == {f"token_refused:room_events:{job.job_id}"}  # one alert for the streak


def test_several_accounts_stream_side_by_side_each_on_its_own_schedule(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = "studio_b"
    sim.state.site.add_account(second, "pw", followers=1)
    monkeypatch.setenv("ROOMWATCH_EVENTS_URL", f"{sim.events_url(OWNER)} {sim.events_url(second)}")
    config = load_config()
    _append(sim, burst=30, seed=1)
    answer = httpx.post(f"{sim.base_url}/_sim/events/{second}", json={"burst": 20}, timeout=60)
    assert answer.status_code == 200, answer.text

    unnamed = crawl(config, db_url, "room_events", until_idle="true")
    assert unnamed.status == "failed"
    assert unnamed.error_message is not None
    assert f"events.url names several accounts ({OWNER}, {second})" in unnamed.error_message

    streams = stream_spider_accounts(config)
    assert streams["room_events"] == [OWNER, second]
    ensure_default_schedules(db)
    register_stream_accounts(db, config)
    added = sync_account_schedules(db, streams)
    assert sorted(added) == [f"room_events@{OWNER}", f"room_events@{second}"]
    assert sync_account_schedules(db, streams) == []  # once
    db.execute("UPDATE schedules SET paused = spider <> 'room_events'")
    runner = CrawlRunner(config, db_url)
    worker = Worker(runner, db_url, max_concurrent=3, shutdown_grace=2)
    scheduler = Scheduler(db_url, runner.submit, held=held_spiders(config), streams=streams)
    worker.start()
    scheduler.start()
    try:
        per_account = "SELECT account, count(*) FROM room_events GROUP BY account ORDER BY 1"
        _until(
            lambda: db.execute(per_account).fetchall() == [(OWNER, 30), (second, 20)],
            "both accounts' events",
        )
    finally:
        scheduler.stop()
        worker.stop()
    jobs = db.execute(
        "SELECT DISTINCT account, args->>'account' FROM crawl_jobs "
        "WHERE trigger = 'schedule' ORDER BY 1"
    ).fetchall()
    assert jobs == [(OWNER, OWNER), (second, second)]  # the default schedule stood aside
    fired = db.execute(
        "SELECT name FROM schedules WHERE last_fired_at IS NOT NULL ORDER BY name"
    ).fetchall()
    assert fired == [(f"room_events@{OWNER}",), (f"room_events@{second}",)]


class ElsewhereApi:
    """A loopback Events API (a context manager) whose answers send ``nextUrl`` to another
    host; it records every path asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.paths.append(self.path)
                body = json.dumps(
                    {
                        "events": [
                            {
                                "method": "broadcastStart",
                                "id": "1733140000000-0",
                                "object": {"broadcaster": OWNER},
                            }
                        ],
                        "nextUrl": f"http://127.0.0.2:{api.port}{self.path}",
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])

    def __enter__(self) -> ElsewhereApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_it_refuses_to_start_without_a_url_and_to_follow_a_next_url_elsewhere(
    stream: Config, db_url: str, db: Conn
) -> None:
    unset = msgspec.structs.replace(stream, events=type(stream.events)())
    job = crawl(unset, db_url, "room_events")
    assert job.status == "failed"
    assert job.error_message is not None
    assert "events.url (ROOMWATCH_EVENTS_URL) is not set" in job.error_message
    assert held_spiders(unset)["room_events"] == "events.url (ROOMWATCH_EVENTS_URL) is not set"

    with ElsewhereApi() as api:
        url = f"http://127.0.0.1:{api.port}/events/{OWNER}/{WRONG_TOKEN}/"
        events = msgspec.structs.replace(stream.events, url=url)
        job = crawl(msgspec.structs.replace(stream, events=events), db_url, "room_events")
    assert job.status == "failed"
    assert job.error_message is not None
    assert "nextUrl points elsewhere (host '127.0.0.2'" in job.error_message
    assert WRONG_TOKEN not in job.error_message
    assert _count(db) == 0  # nothing of an answer whose nextUrl is refused is stored
    assert len(api.paths) == 1  # and nothing was sent there


def test_it_stays_within_its_requests_per_minute(
    stream: Config, db_url: str, db: Conn, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No hold (every answer at once, a tight loop without the limit), and three requests a
    # minute: a 6-second run sends three, waits, and ends on time without a fourth.
    monkeypatch.setenv("ROOMWATCH_EVENTS_TIMEOUT_SECONDS", "0")
    monkeypatch.setenv("ROOMWATCH_EVENTS_MAX_REQUESTS_PER_MINUTE", "3")
    _append(sim, burst=10, seed=9)
    job = crawl(load_config(), db_url, "room_events", run_seconds="6")
    assert job.status == "succeeded", job.error_message
    assert len(_polls(sim)) == 3
    assert job.items == {"room_events": 10}
    assert job.stats["politeness/wait_seconds"] > 0
