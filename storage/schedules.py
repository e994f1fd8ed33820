"""Schedule rows: when each spider runs, kept in the database so API changes survive restarts.

A schedule is ``interval_seconds`` or a five-field ``cron`` expression (evaluated in UTC, so a
daylight-saving change never skips or repeats a run), and may be paused. The agent that holds
the scheduler lock (:data:`SCHEDULER_LOCK`) reads these rows, reloads them when ``updated_at``
moves, and writes back ``next_run_at`` and ``last_fired_at``. Sync functions serve the agent,
the ``*_async`` twins serve the control API; both run the same SQL constants and validation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict, Unpack

import msgspec
import psycopg
from apscheduler.triggers.cron import CronTrigger
from psycopg.rows import class_row

from roomwatch.errors import ScheduleError

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

# (namespace, id) of the session advisory lock that makes one agent the scheduling one.
SCHEDULER_LOCK = (0x726F6F6D, 1)
DEFAULT_MIN_INTERVAL = 60
MAX_INTERVAL = 366 * 24 * 3600  # a year; also keeps the value inside the integer column

# name -> (spider, interval in seconds): the schedules a fresh database starts with.
DEFAULT_SCHEDULES: dict[str, tuple[str, int]] = {
    "affiliate": ("affiliate", 5 * 60),
    "cbhours_live": ("cbhours_live", 5 * 60),
    "cbhours_activity": ("cbhours_activity", 24 * 3600),
    "followed_cams": ("followed_cams", 30 * 60),
    "followers": ("followers", 6 * 3600),
    # The site refreshes the Stats API every 5 minutes; fires only once stats.url is set.
    "room_stats": ("room_stats", 5 * 60),
}


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """One schedule.

    Attributes:
        name: its key (``PATCH /schedules/{name}``).
        spider: what it runs.
        args: the spider arguments it passes.
        interval_seconds: run every this many seconds (exclusive with ``cron``).
        cron: run at the times of this five-field crontab expression, in UTC.
        paused: a paused schedule fires nothing until resumed.
        updated_at: when it was last changed (the agent reloads it then).
        next_run_at: the next run as planned by the scheduling agent; null while paused or
            while no agent schedules.
        last_fired_at: when it last fired (whether or not the crawl could start).
        last_job_id: the job its last firing queued.
    """

    name: str
    spider: str
    args: dict[str, Any]
    interval_seconds: int | None
    cron: str | None
    paused: bool
    updated_at: dt.datetime
    next_run_at: dt.datetime | None
    last_fired_at: dt.datetime | None
    last_job_id: int | None


_COLUMNS = (
    "name, spider, args, interval_seconds, cron, paused, updated_at, next_run_at, "
    "last_fired_at, last_job_id"
)
ALL_SCHEDULES = f"SELECT {_COLUMNS} FROM schedules ORDER BY name"
SCHEDULES_VERSION = (
    "SELECT md5(coalesce(string_agg(name || '@' || updated_at::text, ',' ORDER BY name), '')) "
    "FROM schedules"
)
# Setting one of interval and cron clears the other (the table allows exactly one).
UPDATE_SCHEDULE = f"""
UPDATE schedules SET
    interval_seconds = CASE WHEN %(cron)s::text IS NOT NULL THEN NULL
                            ELSE coalesce(%(interval)s::int, interval_seconds) END,
    cron = CASE WHEN %(interval)s::int IS NOT NULL THEN NULL ELSE coalesce(%(cron)s, cron) END,
    paused = coalesce(%(paused)s, paused),
    updated_at = clock_timestamp()
WHERE name = %(name)s
RETURNING {_COLUMNS}
"""


def check_change(
    interval_seconds: int | None,
    cron: str | None,
    paused: bool | None,
    min_interval: int = DEFAULT_MIN_INTERVAL,
) -> None:
    """Refuses a change that the scheduler could not honour, naming the field.

    Raises:
        ScheduleError: nothing to change, both interval and cron, an interval under the floor,
            or a cron expression APScheduler does not accept.
    """
    if interval_seconds is None and cron is None and paused is None:
        raise ScheduleError("interval_seconds", "give interval_seconds, cron or paused")
    if interval_seconds is not None and cron is not None:
        raise ScheduleError("cron", "give interval_seconds or cron, not both")
    if interval_seconds is not None and interval_seconds < min_interval:
        raise ScheduleError("interval_seconds", f"must be at least {min_interval} seconds")
    if interval_seconds is not None and interval_seconds > MAX_INTERVAL:
        raise ScheduleError("interval_seconds", f"must be at most {MAX_INTERVAL} seconds")
    if cron is not None:
        try:
            CronTrigger.from_crontab(cron, timezone=dt.UTC)
        except ValueError as exc:
            raise ScheduleError("cron", f"not a five-field crontab expression ({exc})") from None


def ensure_default_schedules(conn: Connection) -> list[str]:
    """Inserts the default schedules that are missing; returns their names.

    Existing rows are left alone, so changes made over the API survive every restart.
    """
    with conn.transaction():
        rows = conn.execute(
            "INSERT INTO schedules (name, spider, interval_seconds) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[]) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            [
                list(DEFAULT_SCHEDULES),
                [spider for spider, _ in DEFAULT_SCHEDULES.values()],
                [seconds for _, seconds in DEFAULT_SCHEDULES.values()],
            ],
        ).fetchall()
    return [str(row[0]) for row in rows]


def list_schedules(conn: Connection) -> list[Schedule]:
    """Every schedule, by name."""
    with conn.cursor(row_factory=class_row(Schedule)) as cur:
        return cur.execute(ALL_SCHEDULES).fetchall()


def schedules_version(conn: Connection) -> str:
    """A value that changes whenever a schedule is added, removed or changed."""
    row = conn.execute(SCHEDULES_VERSION).fetchone()
    return str(row[0]) if row else ""


class ScheduleChange(TypedDict, total=False):
    """What :func:`update_schedule` may change (a missing or None key keeps the current value),
    and ``min_interval``, the shortest interval it accepts (default
    :data:`DEFAULT_MIN_INTERVAL`)."""

    interval_seconds: int | None
    cron: str | None
    paused: bool | None
    min_interval: int


def _checked(name: str, change: ScheduleChange) -> dict[str, Any]:
    """``UPDATE_SCHEDULE``'s parameters, once :func:`check_change` accepts the change."""
    interval, cron = change.get("interval_seconds"), change.get("cron")
    paused = change.get("paused")
    check_change(interval, cron, paused, change.get("min_interval", DEFAULT_MIN_INTERVAL))
    return {"name": name, "interval": interval, "cron": cron, "paused": paused}


def update_schedule(
    conn: Connection, name: str, **change: Unpack[ScheduleChange]
) -> Schedule | None:
    """Changes one schedule; None if there is no schedule of that name.

    Raises:
        ScheduleError: the change is invalid (see :func:`check_change`).
    """
    params = _checked(name, change)
    with conn.transaction(), conn.cursor(row_factory=class_row(Schedule)) as cur:
        return cur.execute(UPDATE_SCHEDULE, params).fetchone()


def record_fired(conn: Connection, name: str, job_id: int | None) -> None:
    """Notes that a schedule fired (``job_id``: the job it queued, if it could queue one)."""
    with conn.transaction():
        conn.execute(
            "UPDATE schedules SET last_fired_at = now(), "
            "last_job_id = coalesce(%s, last_job_id) WHERE name = %s",
            [job_id, name],
        )


def publish_next_runs(conn: Connection, next_runs: dict[str, dt.datetime | None]) -> None:
    """Writes the scheduler's plan (``name -> next run``) for ``/status`` to show."""
    with conn.transaction():
        conn.execute(
            "UPDATE schedules s SET next_run_at = n.next_run_at "
            "FROM unnest(%s::text[], %s::timestamptz[]) AS n(name, next_run_at) "
            "WHERE s.name = n.name AND s.next_run_at IS DISTINCT FROM n.next_run_at",
            [list(next_runs), list(next_runs.values())],
        )


async def list_schedules_async(conn: AsyncConnection) -> list[Schedule]:
    """:func:`list_schedules` for the control API."""
    async with conn.cursor(row_factory=class_row(Schedule)) as cur:
        await cur.execute(ALL_SCHEDULES)
        return await cur.fetchall()


async def update_schedule_async(
    conn: AsyncConnection, name: str, **change: Unpack[ScheduleChange]
) -> Schedule | None:
    """:func:`update_schedule` for the control API."""
    params = _checked(name, change)
    async with conn.transaction(), conn.cursor(row_factory=class_row(Schedule)) as cur:
        await cur.execute(UPDATE_SCHEDULE, params)
        return await cur.fetchone()
