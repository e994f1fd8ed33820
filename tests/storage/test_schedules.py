"""Schedule rows, the job supervisor lock behind ``interrupt_abandoned``, and alerts."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
import pytest

from roomwatch.errors import ScheduleError
from storage.alerts import claim_notification, read_alerts, release_notification
from storage.jobs import create_job, finish_job, interrupt_abandoned, lock_job, start_job
from storage.schedules import (
    DEFAULT_SCHEDULES,
    Schedule,
    ensure_default_schedules,
    hold_reasons,
    list_schedules,
    restart_delay,
    restart_due,
    schedules_version,
    update_schedule,
)

Conn = psycopg.Connection[Any]


def test_defaults_are_added_once_and_changes_survive(db: Conn) -> None:
    assert ensure_default_schedules(db) == list(DEFAULT_SCHEDULES)
    by_name = {s.name: s for s in list_schedules(db)}
    assert {n: (s.spider, s.interval_seconds) for n, s in by_name.items()} == {
        "affiliate": ("affiliate", 300),
        "cbhours_live": ("cbhours_live", 300),
        "cbhours_activity": ("cbhours_activity", 86400),
        "followed_cams": ("followed_cams", 1800),
        "followers": ("followers", 21600),
        "room_stats": ("room_stats", 300),
        "room_events": ("room_events", None),
    }
    assert [n for n, s in by_name.items() if s.keep_running] == ["room_events"]
    update_schedule(db, "followers", interval_seconds=3600)
    assert ensure_default_schedules(db) == []
    followers = {s.name: s for s in list_schedules(db)}["followers"]
    assert followers.interval_seconds == 3600


def test_interval_cron_and_pause_replace_each_other(db: Conn) -> None:
    ensure_default_schedules(db)
    version = schedules_version(db)
    cron = update_schedule(db, "affiliate", cron="*/10 * * * *")
    assert cron is not None
    assert (cron.cron, cron.interval_seconds, cron.paused) == ("*/10 * * * *", None, False)
    assert schedules_version(db) != version
    paused = update_schedule(db, "affiliate", paused=True)
    assert paused is not None
    assert (paused.cron, paused.paused) == ("*/10 * * * *", True)
    back = update_schedule(db, "affiliate", interval_seconds=120, paused=False)
    assert back is not None
    assert (back.cron, back.interval_seconds, back.paused) == (None, 120, False)
    assert update_schedule(db, "nope", paused=True) is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"interval_seconds": 59}, "interval_seconds", "at least 60"),
        ({"interval_seconds": 10**10}, "interval_seconds", "at most"),
        ({"interval_seconds": 60, "cron": "* * * * *"}, "cron", "not both"),
        ({"cron": "every day"}, "cron", "crontab"),
        ({"cron": "61 * * * *"}, "cron", "crontab"),
        ({}, "interval_seconds", "give interval_seconds, cron or paused"),
    ],
)
def test_a_bad_change_names_the_field(
    db: Conn, change: dict[str, Any], field: str, message: str
) -> None:
    ensure_default_schedules(db)
    with pytest.raises(ScheduleError, match=message) as caught:
        update_schedule(db, "affiliate", **change)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_the_interval_floor_is_a_parameter(db: Conn) -> None:
    ensure_default_schedules(db)
    changed = update_schedule(db, "affiliate", interval_seconds=2, min_interval=1)
    assert changed is not None and changed.interval_seconds == 2


def test_only_jobs_without_a_live_supervisor_are_interrupted(db_url: str, db: Conn) -> None:
    watched = create_job(db, "affiliate", {}, "api")
    orphan = create_job(db, "cbhours_live", {}, "schedule")
    waiting = create_job(db, "followers", {}, "api")
    stale_cli = create_job(db, "followed_cams", {}, "cli")
    with db.transaction():
        db.execute(
            "UPDATE crawl_jobs SET queued_at = now() - interval '2 minutes' WHERE job_id = %s",
            [stale_cli.job_id],
        )
    with psycopg.connect(db_url, autocommit=True) as supervisor:
        assert lock_job(supervisor, watched.job_id)
        assert start_job(supervisor, watched.job_id, 1, "/tmp/a.log")
        with psycopg.connect(db_url, autocommit=True) as dead:
            assert lock_job(dead, orphan.job_id)
            assert start_job(dead, orphan.job_id, 2, "/tmp/b.log")
            # A second supervisor cannot take a job that is watched.
            assert not lock_job(dead, watched.job_id)
            dead_pid = dead.info.backend_pid
        _wait_gone(db, dead_pid)
        interrupted = interrupt_abandoned(db)
        assert sorted(j.job_id for j in interrupted) == [orphan.job_id, stale_cli.job_id]
        status = dict(db.execute("SELECT job_id, status FROM crawl_jobs").fetchall())
        assert status == {
            watched.job_id: "running",
            orphan.job_id: "interrupted",
            waiting.job_id: "queued",
            stale_cli.job_id: "interrupted",
        }
        supervisor_pid = supervisor.info.backend_pid
    _wait_gone(db, supervisor_pid)
    assert [j.job_id for j in interrupt_abandoned(db)] == [watched.job_id]


def _wait_gone(db: Conn, backend_pid: int) -> None:
    """A closed connection's server process (and its locks) go a moment later."""
    deadline = time.monotonic() + 5
    while True:
        db.commit()  # pg_stat_activity is a snapshot taken once per transaction
        if not db.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend_pid]
        ).fetchone():
            return
        assert time.monotonic() < deadline, "the backend did not exit"
        time.sleep(0.02)


def _finished(db: Conn, spider: str, status: str, error: str | None = None) -> int:
    job = create_job(db, spider, {}, "schedule")
    db.execute("UPDATE crawl_jobs SET status = 'running' WHERE job_id = %s", [job.job_id])
    finish_job(db, job.job_id, status, finish_reason="finished", error_message=error)  # type: ignore[arg-type]
    return job.job_id


def test_alerts_for_a_failure_streak_and_an_expired_session(db: Conn) -> None:
    _finished(db, "affiliate", "failed", "old")
    _finished(db, "affiliate", "succeeded")
    first = _finished(db, "affiliate", "failed", "boom 1")
    _finished(db, "affiliate", "cancelled")  # says nothing about the spider
    _finished(db, "affiliate", "failed", "boom 2")
    assert read_alerts(db, 3) == []
    _finished(db, "affiliate", "failed", "boom 3")
    [alert] = read_alerts(db, 3)
    assert (alert.kind, alert.subject, alert.key) == (
        "spider_failing",
        "affiliate",
        f"spider_failing:affiliate:{first}",
    )
    assert alert.message == "affiliate failed 3 times in a row; last error: boom 3"
    _finished(db, "affiliate", "failed", "boom 4")
    assert [a.key for a in read_alerts(db, 3)] == [alert.key]  # same streak, same key

    with db.transaction():
        db.execute(
            "INSERT INTO login_sessions (account, method, status, state, captured_at) VALUES "
            "('me', 'import', 'expired', 'a', now() - interval '1 day'), "
            "('you', 'import', 'expired', 'b', now() - interval '1 day'), "
            "('you', 'import', 'valid', 'c', now())"
        )
    kinds = [(a.kind, a.subject) for a in read_alerts(db, 3)]
    assert ("session_expired", "session 1") in kinds
    assert ("session_expired", "session 2") not in kinds  # replaced by a newer session

    _finished(db, "affiliate", "succeeded")
    assert [a.kind for a in read_alerts(db, 3)] == ["session_expired"]


def test_a_follow_change_held_again_and_again_is_one_alert(db: Conn) -> None:
    held = "followers: 80 of 100 would be marked lost; held, not concluded; run ..."
    _finished(db, "followers", "succeeded")
    first = _finished(db, "followers", "failed", held)
    [alert] = read_alerts(db, 9)
    assert alert.key == f"follow_change_held:followers:{first}"
    latest = _finished(db, "followers", "failed", held)  # the next scheduled crawl, held again
    [again] = read_alerts(db, 9)
    assert again.key == alert.key  # one notification, not one per crawl
    assert f"job {latest}:" in again.message
    _finished(db, "followers", "succeeded")  # confirmed, or the list came back
    assert read_alerts(db, 9) == []
    renewed = _finished(db, "followers", "failed", held)
    assert [a.key for a in read_alerts(db, 9)] == [f"follow_change_held:followers:{renewed}"]


def test_a_notification_is_claimed_once_until_released(db: Conn) -> None:
    assert claim_notification(db, "k")
    assert not claim_notification(db, "k")
    release_notification(db, "k")
    assert claim_notification(db, "k")


def test_a_keep_running_schedule_can_be_paused_but_has_no_interval_or_cron(db: Conn) -> None:
    ensure_default_schedules(db)
    paused = update_schedule(db, "room_events", paused=True)
    assert paused is not None
    assert (paused.keep_running, paused.paused, paused.interval_seconds) == (True, True, None)
    for change in ({"interval_seconds": 600}, {"cron": "* * * * *"}):
        with pytest.raises(ScheduleError, match="keep-running") as caught:
            update_schedule(db, "room_events", **change)  # type: ignore[arg-type]
        assert caught.value.field == "interval_seconds"
    after = {s.name: s for s in list_schedules(db)}["room_events"]
    assert (after.keep_running, after.interval_seconds, after.cron) == (True, None, None)


def _ended(db: Conn, spider: str, *statuses: str) -> None:
    for status in statuses:
        job = create_job(db, spider, {}, "schedule")
        finish_job(db, job.job_id, status, finish_reason=status)  # type: ignore[arg-type]


def test_restarts_come_at_once_after_a_success_and_back_off_after_failures(db: Conn) -> None:
    assert [restart_delay(n) for n in range(8)] == [0, 10, 20, 40, 80, 160, 320, 640]
    assert restart_delay(9) == restart_delay(60) == 900
    due = restart_due(db, "room_events")
    assert due is not None and due[1] == 0  # never ran: now
    _ended(db, "room_events", "failed", "succeeded")
    due = restart_due(db, "room_events")
    assert due is not None and due[1] == 0
    _ended(db, "room_events", "failed", "cancelled", "failed")  # three in a row
    due = restart_due(db, "room_events")
    assert due is not None
    assert 30 < due[1] <= 40
    active = create_job(db, "room_events", {}, "schedule")
    assert restart_due(db, "room_events") is None  # one is queued: nothing to start
    finish_job(db, active.job_id, "succeeded", finish_reason="finished")
    due = restart_due(db, "room_events")
    assert due is not None and due[1] == 0
    # A run the agent's shutdown cancelled is no failure: the next agent restarts it at once.
    stopped = create_job(db, "room_events", {}, "schedule")
    finish_job(db, stopped.job_id, "cancelled", finish_reason="shutdown")
    due = restart_due(db, "room_events")
    assert due is not None and due[1] == 0


def _schedule(name: str, spider: str, account: str | None = None) -> Schedule:
    return Schedule(
        name=name, spider=spider, args={"account": account} if account else {},
        interval_seconds=300, cron=None, paused=False, updated_at=dt.datetime.now(dt.UTC),
        next_run_at=None, last_fired_at=None, last_job_id=None, account=account,
    )  # fmt: skip


def test_hold_reasons_name_the_setting_the_account_or_the_schedules_that_run_instead() -> None:
    schedules = [
        _schedule("affiliate", "affiliate"),
        _schedule("room_events", "room_events"),
        _schedule("room_stats", "room_stats"),
        _schedule("room_stats@studio_a", "room_stats", "studio_a"),
        _schedule("room_stats@gone", "room_stats", "gone"),
    ]
    reasons = hold_reasons(
        schedules,
        held={"room_events": "events.url (ROOMWATCH_EVENTS_URL) is not set"},
        streams={"room_stats": ["studio_a", "studio_b"], "room_events": []},
    )
    assert reasons == {
        "room_events": "events.url (ROOMWATCH_EVENTS_URL) is not set",
        "room_stats@gone": "stats.url names no account gone",
        "room_stats": (
            "the per-account schedules run instead (room_stats@gone, room_stats@studio_a)"
        ),
    }
