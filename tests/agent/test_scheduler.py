"""The scheduler in-process: one scheduling agent per database, live reloads, resumed rhythm."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from agent.scheduler import Scheduler, Upkeep, first_run, make_trigger
from roomwatch.catalog import held_spiders
from roomwatch.config import load_config
from storage.jobs import Job, Trigger, create_job, finish_job
from storage.schedules import (
    Schedule,
    ensure_default_schedules,
    list_schedules,
    sync_account_schedules,
)

Conn = psycopg.Connection[Any]
NOW = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)


class Recorder:
    """A ``submit`` that queues a real job, ends it at once, and remembers who fired."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.fired: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def submit_as(self, who: str) -> Callable[[str, dict[str, Any], Trigger], Job]:
        def submit(spider: str, args: dict[str, Any], trigger: Trigger) -> Job:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                job = create_job(conn, spider, args, trigger)
                finish_job(conn, job.job_id, "succeeded", finish_reason="finished")
            with self.lock:
                self.fired.append((who, spider))
            return job

        return submit

    def count(self, who: str) -> int:
        with self.lock:
            return sum(1 for name, _ in self.fired if name == who)


@pytest.fixture
def fast_affiliate(db_url: str) -> Iterator[Conn]:
    """Defaults, with every schedule paused but affiliate, which fires every second.

    Yields an autocommit connection, so every read sees what the scheduler wrote.
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_default_schedules(conn)
        conn.execute("UPDATE schedules SET paused = name <> 'affiliate'")
        conn.execute("UPDATE schedules SET interval_seconds = 1 WHERE name = 'affiliate'")
        yield conn


@pytest.fixture
def schedulers(db_url: str) -> Iterator[list[Scheduler]]:
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_agents_on_one_database_fire_each_run_once(
    db_url: str, fast_affiliate: Conn, schedulers: list[Scheduler]
) -> None:
    recorder = Recorder(db_url)
    first = Scheduler(db_url, recorder.submit_as("first"), lock_retry_seconds=1)
    second = Scheduler(db_url, recorder.submit_as("second"), lock_retry_seconds=1)
    schedulers += [first, second]
    first.start()
    second.start()
    assert first.leading and not second.leading
    _wait(lambda: recorder.count("first") >= 3)
    assert recorder.count("second") == 0
    status = fast_affiliate.execute(
        "SELECT next_run_at IS NOT NULL, last_job_id IS NOT NULL FROM schedules "
        "WHERE name = 'affiliate'"
    ).fetchone()
    assert status == (True, True)

    first.stop()  # releases the lock: the standby takes over at its next retry
    fired_by_first = recorder.count("first")
    _wait(lambda: recorder.count("second") >= 2)
    assert second.leading
    assert recorder.count("first") == fired_by_first
    # Every firing queued its own job: none was refused as a duplicate.
    jobs = fast_affiliate.execute("SELECT count(*) FROM crawl_jobs").fetchone()
    assert jobs == (len(recorder.fired),)


def test_changes_apply_live(db_url: str, fast_affiliate: Conn, schedulers: list[Scheduler]) -> None:
    recorder = Recorder(db_url)
    scheduler = Scheduler(db_url, recorder.submit_as("it"))
    schedulers.append(scheduler)
    scheduler.start()
    _wait(lambda: recorder.count("it") >= 1)
    with fast_affiliate.transaction():
        fast_affiliate.execute(
            "UPDATE schedules SET paused = true, updated_at = clock_timestamp() "
            "WHERE name = 'affiliate'"
        )
    _wait(
        lambda: (
            fast_affiliate.execute(
                "SELECT next_run_at IS NULL FROM schedules WHERE name = 'affiliate'"
            ).fetchone()
            == (True,)
        )
    )
    paused_at = recorder.count("it")
    time.sleep(2.5)
    assert recorder.count("it") <= paused_at + 1  # at most a firing already under way
    with fast_affiliate.transaction():
        fast_affiliate.execute(
            "UPDATE schedules SET paused = false, interval_seconds = 3600, "
            "updated_at = clock_timestamp() WHERE name = 'followers'"
        )
    _wait(lambda: any(spider == "followers" for _, spider in recorder.fired))


def test_a_restart_resumes_the_rhythm(db: Conn) -> None:
    ensure_default_schedules(db)
    affiliate = next(s for s in list_schedules(db) if s.name == "affiliate")
    trigger, period = make_trigger(affiliate)
    assert period == 300
    assert first_run(affiliate, trigger, NOW) == NOW  # never fired: now
    recent = _with(affiliate, last_fired_at=NOW - dt.timedelta(seconds=100))
    assert first_run(recent, trigger, NOW) == NOW + dt.timedelta(seconds=200)
    overdue = _with(affiliate, last_fired_at=NOW - dt.timedelta(hours=5))
    assert first_run(overdue, trigger, NOW) == NOW  # one catch-up run, not sixty

    hourly = _with(affiliate, interval_seconds=None, cron="0 * * * *")
    cron_trigger, cron_period = make_trigger(hourly)
    assert cron_period == 3600
    assert first_run(hourly, cron_trigger, NOW + dt.timedelta(minutes=10)) == NOW + dt.timedelta(
        hours=1
    )
    missed = _with(hourly, last_fired_at=NOW - dt.timedelta(hours=3))
    assert first_run(missed, cron_trigger, NOW + dt.timedelta(minutes=10)) == NOW + dt.timedelta(
        minutes=10
    )


def _with(schedule: Schedule, **changes: Any) -> Schedule:
    values = {name: getattr(schedule, name) for name in schedule.__struct_fields__}
    return Schedule(**{**values, **changes})


def test_the_leading_agent_runs_retention_at_once(
    db_url: str, fast_affiliate: Conn, schedulers: list[Scheduler]
) -> None:
    ran = threading.Event()
    recorder = Recorder(db_url)
    leader = Scheduler(
        db_url,
        recorder.submit_as("leader"),
        upkeep=[Upkeep("retention", ran.set, dt.timedelta(hours=6))],
    )
    standby_ran = threading.Event()
    standby = Scheduler(
        db_url,
        recorder.submit_as("standby"),
        upkeep=[Upkeep("retention", standby_ran.set, dt.timedelta(hours=6))],
    )
    schedulers += [leader, standby]
    leader.start()
    standby.start()
    assert ran.wait(10), "the leader did not run maintenance on taking the lock"
    assert not standby_ran.is_set()


def test_a_schedule_whose_spider_is_not_configured_does_not_fire(
    db_url: str, fast_affiliate: Conn, schedulers: list[Scheduler]
) -> None:
    # room_stats without stats.url: its schedule exists (ready for when it is set) but fires
    # nothing, rather than a failed job every five minutes.
    with fast_affiliate.transaction():
        fast_affiliate.execute(
            "UPDATE schedules SET paused = false, interval_seconds = 1, "
            "updated_at = clock_timestamp() WHERE name = 'room_stats'"
        )
    recorder = Recorder(db_url)
    scheduler = Scheduler(
        db_url,
        recorder.submit_as("it"),
        held={"room_stats": "stats.url (ROOMWATCH_STATS_URL) is not set"},
    )
    schedulers.append(scheduler)
    scheduler.start()
    _wait(lambda: recorder.count("it") >= 3)  # affiliate fires every second meanwhile
    # A change to it (over the API) is taken in, still without firing.
    with fast_affiliate.transaction():
        fast_affiliate.execute(
            "UPDATE schedules SET interval_seconds = 2, updated_at = clock_timestamp() "
            "WHERE name = 'room_stats'"
        )
    fired = recorder.count("it")
    _wait(lambda: recorder.count("it") >= fired + 2)
    assert {spider for _, spider in recorder.fired} == {"affiliate"}
    plan = fast_affiliate.execute(
        "SELECT name FROM schedules WHERE next_run_at IS NOT NULL ORDER BY name"
    ).fetchall()
    assert plan == [("affiliate",)]


@pytest.fixture
def stream_only(db_url: str) -> Iterator[Conn]:
    """Defaults, every schedule paused but the keep-running ``room_events`` one."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_default_schedules(conn)
        conn.execute("UPDATE schedules SET paused = name <> 'room_events'")
        yield conn


class Outcomes:
    """A ``submit`` that queues a real job and ends it at once as ``status`` says."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.status = "succeeded"
        self.fired = 0

    def submit(self, spider: str, args: dict[str, Any], trigger: Trigger) -> Job:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            job = create_job(conn, spider, args, trigger)
            finish_job(conn, job.job_id, self.status, finish_reason=self.status)  # type: ignore[arg-type]
        self.fired += 1
        return job


def _pause(conn: Conn, name: str, paused: bool) -> None:
    conn.execute(
        "UPDATE schedules SET paused = %s, updated_at = clock_timestamp() WHERE name = %s",
        [paused, name],
    )


def test_a_keep_running_schedule_restarts_its_spider_until_paused_and_backs_off_after_failures(
    db_url: str, stream_only: Conn, schedulers: list[Scheduler]
) -> None:
    outcomes = Outcomes(db_url)
    scheduler = Scheduler(db_url, outcomes.submit)
    schedulers.append(scheduler)
    scheduler.start()
    _wait(lambda: outcomes.fired >= 3)  # each run succeeded: started again at once
    _pause(stream_only, "room_events", True)
    time.sleep(1.5)
    paused_at = outcomes.fired
    time.sleep(2.5)
    assert outcomes.fired == paused_at  # paused: never started again
    outcomes.status = "failed"
    _pause(stream_only, "room_events", False)
    _wait(lambda: outcomes.fired == paused_at + 1)
    time.sleep(4)
    # One failure waits 10 s before the next start (a tight loop would have started 4 more).
    assert outcomes.fired == paused_at + 1
    row = stream_only.execute(
        "SELECT next_run_at - (SELECT max(finished_at) FROM crawl_jobs) FROM schedules "
        "WHERE name = 'room_events'"
    ).fetchone()
    assert row is not None and row[0] == dt.timedelta(seconds=10)


def test_a_spider_without_its_setting_is_not_fired(
    db_url: str, stream_only: Conn, schedulers: list[Scheduler]
) -> None:
    assert held_spiders(load_config({})) == {
        "affiliate": "affiliate.wm (ROOMWATCH_AFFILIATE_WM) is not set",
        "room_events": "events.url (ROOMWATCH_EVENTS_URL) is not set",
        "room_stats": "stats.url (ROOMWATCH_STATS_URL) is not set",
    }
    wm = {"ROOMWATCH_AFFILIATE_WM": "testwm"}
    held = held_spiders(load_config(wm))
    url = "https://eventsapi.chaturbate.com/events/owner/t0ken/"
    assert held_spiders(load_config({**wm, "ROOMWATCH_EVENTS_URL": url})) == {
        "room_stats": "stats.url (ROOMWATCH_STATS_URL) is not set"
    }
    stats = "https://chaturbate.com/statsapi/?username=owner&token=" + "t" * 24
    assert held_spiders(load_config({**wm, "ROOMWATCH_STATS_URL": stats})) == {
        "room_events": "events.url (ROOMWATCH_EVENTS_URL) is not set"
    }
    outcomes = Outcomes(db_url)
    scheduler = Scheduler(db_url, outcomes.submit, held=held)
    schedulers.append(scheduler)
    scheduler.start()
    time.sleep(3)
    assert outcomes.fired == 0
    assert stream_only.execute(
        "SELECT next_run_at FROM schedules WHERE name = 'room_events'"
    ).fetchone() == (None,)


def test_several_accounts_get_their_own_schedules_and_the_defaults_stand_aside(
    db_url: str, schedulers: list[Scheduler]
) -> None:
    recorder = Recorder(db_url)
    streams = {"room_events": ["owner"], "room_stats": []}
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_default_schedules(conn)
        conn.execute("UPDATE schedules SET paused = name <> 'followed_cams'")
        conn.execute("UPDATE schedules SET interval_seconds = 1 WHERE name = 'followed_cams'")
        conn.execute(
            "INSERT INTO login_sessions (account, method, status, state) "
            "VALUES ('studio_a', 'import', 'valid', 'x'), ('unknown', 'import', 'valid', 'x')"
        )
        assert sync_account_schedules(conn, streams) == []  # one account: the defaults do
        conn.execute(
            "INSERT INTO login_sessions (account, method, status, state) "
            "VALUES ('studio_b', 'import', 'expired', 'x')"
        )
        # A stream schedule of an account its URL no longer names (it was set once).
        conn.execute("INSERT INTO accounts (account) VALUES ('gone')")
        conn.execute(
            "INSERT INTO schedules (name, spider, args, account, keep_running) "
            """VALUES ('room_events@gone', 'room_events', '{"account": "gone"}', 'gone', true)"""
        )
        added = sync_account_schedules(conn, streams)
        assert sorted(added) == [
            "followed_cams@studio_a",
            "followed_cams@studio_b",
            "followers@studio_a",
            "followers@studio_b",
        ]
        assert sync_account_schedules(conn, streams) == []
        mine = {s.name: s for s in list_schedules(conn)}
        assert mine["followed_cams@studio_b"].args == {"account": "studio_b"}
        assert mine["followed_cams@studio_b"].account == "studio_b"
        # Timed as the default was when the account appeared.
        assert (
            mine["followed_cams@studio_b"].interval_seconds,
            mine["followers@studio_a"].paused,
        ) == (1, True)
        assert mine["followers@studio_a"].interval_seconds == mine["followers"].interval_seconds

        scheduler = Scheduler(db_url, recorder.submit_as("it"), streams=streams)
        schedulers.append(scheduler)
        scheduler.start()
        _wait(lambda: recorder.count("it") >= 4)
        scheduler.stop()
        fired = conn.execute(
            "SELECT DISTINCT spider, args->>'account', account FROM crawl_jobs ORDER BY 2"
        ).fetchall()
        assert fired == [
            ("followed_cams", "studio_a", "studio_a"),
            ("followed_cams", "studio_b", "studio_b"),
        ]
        # Neither the default (per-account ones run instead) nor the stream of an account
        # events.url does not name fired, and neither shows a next run.
        plan = dict(conn.execute("SELECT name, last_fired_at FROM schedules").fetchall())
        assert plan["followed_cams"] is None and plan["room_events@gone"] is None
