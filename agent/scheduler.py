"""The scheduler: fires the schedules table's crawls, in one agent per database at a time.

**One scheduling agent.** An agent schedules only while it holds a PostgreSQL session advisory
lock (``storage.schedules.SCHEDULER_LOCK``) on a connection it keeps for that purpose. The lock
goes with the connection, so when that agent dies another one takes over at its next retry
(``agent.lock_retry_seconds``); meanwhile every agent serves the API and runs queued jobs.

**Timing.** APScheduler 3 (``BackgroundScheduler``, UTC) holds one job per unpaused schedule,
with ``coalesce=True``, ``max_instances=1`` and ``misfire_grace_time`` equal to the schedule's
period. After a busy spell or a sleeping laptop, the runs that came due collapse into one
(coalesce) that starts at once, and since the newest due time is always less than one period
old, the grace never drops that catch-up run; no burst, no silent gap. A run that is missed all
the same (the machine froze past a whole period) is logged as a warning. On (re)load, the next
run follows ``last_fired_at``: a restart resumes the rhythm, and an overdue schedule fires now.

**Firing** queues a job (``CrawlRunner.submit``); a worker runs it. If one of that spider is
already queued or running, the firing is skipped and logged: the unique index keeps it single.

**Live changes.** Every tick the scheduling agent compares a digest of the schedules'
``updated_at``; a changed schedule is re-added, so API changes apply within seconds.

**Keep running.** A ``keep_running`` schedule (the ``room_events`` stream) is not an
APScheduler job: every tick, if its spider has no queued or running job, it is queued again
once :func:`storage.schedules.restart_due` says so (at once after a success, 10 s doubling to
15 min after failures). Pausing it stops the restarts; the running job goes on until it ends or
is cancelled.

**Held spiders.** A spider whose required setting is empty (``SpiderInfo.requires``, e.g.
``events.url``) is never fired (:func:`roomwatch.catalog.held_spiders`): its schedule stays,
logged once as waiting for the setting, and shows no next run, so an install without an Events
URL does not collect a failed job a minute. Why a schedule is held is decided in one place,
:func:`storage.schedules.hold_reasons`, which ``GET /schedules`` and ``GET /status`` show too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import psycopg
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from psycopg.conninfo import make_conninfo

from roomwatch.errors import DatabaseError, JobConflict, RoomwatchError
from storage.database import connect, try_lock
from storage.jobs import Job, Trigger
from storage.schedules import (
    SCHEDULER_LOCK,
    Schedule,
    hold_reasons,
    list_schedules,
    publish_next_runs,
    record_fired,
    restart_due,
    schedules_version,
)

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
Submit = Callable[[str, dict[str, Any], Trigger], Job]


class Upkeep(NamedTuple):
    """Database upkeep the leading agent runs: at once when it takes the lock, then ``every``."""

    name: str
    run: Callable[[], object]
    every: dt.timedelta


def make_trigger(schedule: Schedule) -> tuple[BaseTrigger, float]:
    """The APScheduler trigger of a schedule, and its period in seconds."""
    if schedule.cron is not None:
        trigger: BaseTrigger = CronTrigger.from_crontab(schedule.cron, timezone=dt.UTC)
        now = dt.datetime.now(dt.UTC)
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1))
        return trigger, max(60.0, (second - first).total_seconds())
    assert schedule.interval_seconds is not None
    return IntervalTrigger(seconds=schedule.interval_seconds, timezone=dt.UTC), float(
        schedule.interval_seconds
    )


def first_run(schedule: Schedule, trigger: BaseTrigger, now: dt.datetime) -> dt.datetime:
    """When a (re)loaded schedule fires first: its rhythm after ``last_fired_at``, else now.

    A schedule that never fired, or whose next run came due while no agent scheduled, fires
    now (one catch-up run); a cron schedule that never fired waits for its first time.
    """
    last = schedule.last_fired_at
    if schedule.interval_seconds is not None:
        due = last + dt.timedelta(seconds=schedule.interval_seconds) if last else now
    elif last is None:
        return trigger.get_next_fire_time(None, now)  # type: ignore[no-any-return]
    else:
        due = trigger.get_next_fire_time(None, last + dt.timedelta(seconds=1))
    return max(due, now)


class Scheduler:
    """Schedules crawls while this agent holds the scheduler lock; retries it otherwise.

    Args:
        conninfo: the database.
        submit: queues a job (``CrawlRunner.submit``).
        lock_retry_seconds: how often a standby agent tries to take the lock.
        upkeep: database upkeep (retention, due person summaries) run by the leading agent
            only, each at once when it takes the lock and then at its own interval.
        held: spiders never to fire, with the reason (:func:`roomwatch.catalog.held_spiders`).
        streams: the accounts each stream spider can read
            (:func:`roomwatch.catalog.stream_spider_accounts` of the config): a per-account
            schedule of an account its URL setting does not name does not fire.
    """

    def __init__(
        self,
        conninfo: str,
        submit: Submit,
        lock_retry_seconds: float = 30,
        upkeep: Sequence[Upkeep] = (),
        held: Mapping[str, str] | None = None,
        streams: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._held = dict(held or {})
        self._streams = {spider: list(accounts) for spider, accounts in (streams or {}).items()}
        self._holds: dict[str, str] = {}  # schedule name -> why it does not fire
        self._upkeep = tuple(upkeep)
        self._submit = submit
        self._lock_retry = lock_retry_seconds
        self._identity = f"roomwatch scheduler on {socket.gethostname()} (pid {os.getpid()})"
        self._lock_conn: psycopg.Connection[Any] | None = None
        self._aps: BackgroundScheduler | None = None
        self._loaded: dict[str, Schedule] = {}
        self._version = ""
        self._published: dict[str, dt.datetime | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        """True while this agent is the one that schedules."""
        return self._aps is not None

    def start(self) -> None:
        """Tries the lock once now (so the start-up log says which role this agent has)."""
        # APScheduler logs two INFO lines per run; our own lines say what matters.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._try_to_lead()
        if not self.leading:
            log.info("scheduler: standby (another agent schedules); retrying its lock")
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops firing, clears the published plan, releases the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.leading and self._lock_conn is not None:
            try:
                publish_next_runs(self._lock_conn, dict.fromkeys(self._loaded))
            except psycopg.Error as exc:
                log.warning("scheduler: could not clear the next runs (%s)", exc)
        self._step_down()

    def _loop(self) -> None:
        last_try = dt.datetime.now(dt.UTC)
        while not self._stop.wait(TICK_SECONDS):
            try:
                if self.leading:
                    self._maintain()
                elif (dt.datetime.now(dt.UTC) - last_try).total_seconds() >= self._lock_retry:
                    last_try = dt.datetime.now(dt.UTC)
                    self._try_to_lead()
            except (psycopg.Error, DatabaseError) as exc:
                log.warning("scheduler: database trouble, stepping down (%s)", exc)
                self._step_down()
                last_try = dt.datetime.now(dt.UTC)

    def _try_to_lead(self) -> None:
        if self._lock_conn is None or self._lock_conn.closed:
            conninfo = make_conninfo(self._conninfo, application_name=self._identity)
            self._lock_conn = connect(conninfo, autocommit=True)
        if not try_lock(self._lock_conn, SCHEDULER_LOCK):
            return
        log.info("scheduler: this agent schedules (it holds the scheduler lock)")
        self._aps = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._aps.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self._aps.start()
        for task in self._upkeep:
            self._aps.add_job(
                task.run,
                IntervalTrigger(seconds=task.every.total_seconds(), timezone=dt.UTC),
                id=f"_{task.name}",  # not a schedule name: _reload never touches it
                next_run_time=dt.datetime.now(dt.UTC),
                misfire_grace_time=int(task.every.total_seconds()),
                coalesce=True,
                max_instances=1,
            )
        self._loaded, self._version, self._published = {}, "", {}
        self._maintain()

    def _step_down(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        if self._lock_conn is not None:
            self._lock_conn.close()  # releases the lock, if the server still has it
            self._lock_conn = None

    def _maintain(self) -> None:
        """Checks the lock connection, reloads changed schedules, publishes the next runs."""
        conn, aps = self._lock_conn, self._aps
        assert conn is not None and aps is not None
        # APScheduler sleeps on a monotonic clock, which stands still while the machine is
        # suspended; a nudge every tick makes it notice due runs within a second of waking.
        aps.wakeup()
        version = schedules_version(conn)  # also proves the lock connection is alive
        if version != self._version:
            self._reload(aps, list_schedules(conn))
            self._version = version
        plan: dict[str, dt.datetime | None] = dict.fromkeys(self._loaded)
        for job in aps.get_jobs():
            plan[job.id] = job.next_run_time if self._fires(job.id) else None
        for name, schedule in self._loaded.items():
            if schedule.keep_running and not schedule.paused and self._fires(name):
                plan[name] = self._keep_running(conn, name, schedule)
        if plan != self._published:
            publish_next_runs(conn, plan)
            self._published = plan

    def _fires(self, name: str) -> bool:
        return name in self._loaded and name not in self._holds

    def _keep_running(
        self, conn: psycopg.Connection[Any], name: str, schedule: Schedule
    ) -> dt.datetime | None:
        """Queues the schedule's spider again if it is not running and its back-off is over;
        returns when it is due next (None while it runs)."""
        due = restart_due(conn, schedule.spider, schedule.account)
        if due is None:
            return None
        when, wait = due
        if wait > 0:
            return when
        self._fire(name)
        return None

    def _reload(self, aps: BackgroundScheduler, schedules: list[Schedule]) -> None:
        now = dt.datetime.now(dt.UTC)
        current = {s.name: s for s in schedules}
        holds = hold_reasons(current.values(), self._held, self._streams)
        for name, reason in holds.items():
            if self._holds.get(name) != reason and not current[name].paused:
                log.info("schedule %s: not firing: %s", name, reason)
        self._holds = holds
        for name in set(self._loaded) - set(current):
            aps.remove_job(name)
            log.info("schedule %s: removed", name)
        for name, schedule in current.items():
            before = self._loaded.get(name)
            if before is not None and before.updated_at == schedule.updated_at:
                continue
            if before is not None and not before.paused and not before.keep_running:
                aps.remove_job(name)
            if schedule.paused:
                log.info("schedule %s: paused", name)
                continue
            if name in holds and schedule.keep_running:
                continue
            if schedule.keep_running:
                log.info("schedule %s: %s, kept running", name, schedule.spider)
                continue
            trigger, period = make_trigger(schedule)
            start = first_run(schedule, trigger, now)
            aps.add_job(
                self._fire,
                trigger,
                args=[name],
                id=name,
                name=name,
                next_run_time=start,
                misfire_grace_time=int(period),
                coalesce=True,
                max_instances=1,
            )
            every = schedule.cron or f"every {schedule.interval_seconds} s"
            log.info("schedule %s: %s (%s), next run %s", name, schedule.spider, every, start)
        self._loaded = current

    def _fire(self, name: str) -> None:
        """Runs in APScheduler's pool: queues the schedule's crawl and records the firing."""
        schedule = self._loaded.get(name)
        if schedule is None or name in self._holds:
            return
        job_id: int | None = None
        try:
            job = self._submit(schedule.spider, schedule.args, "schedule")
            job_id = job.job_id
            log.info("schedule %s: queued %s job #%d", name, schedule.spider, job_id)
        except JobConflict as conflict:
            log.info("schedule %s: skipped, job #%d is still active", name, conflict.existing)
        except RoomwatchError as exc:
            log.error("schedule %s: could not queue the crawl: %s", name, exc)
        try:
            with connect(self._conninfo) as conn:
                record_fired(conn, name, job_id)
        except (psycopg.Error, DatabaseError) as exc:
            log.warning("schedule %s: could not record the firing (%s)", name, exc)

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "schedule %s: the run due at %s was missed (the agent was stalled for longer "
                "than the schedule's period); the next one is on time",
                event.job_id,
                event.scheduled_run_time,
            )
        elif event.job_id.startswith("_"):
            log.error("upkeep %s failed: %s", event.job_id[1:], event.exception)
        else:
            log.error("schedule %s: firing failed: %s", event.job_id, event.exception)
