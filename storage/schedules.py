"""Schedule rows: when each spider runs, kept in the database so API changes survive restarts.

A schedule is ``interval_seconds``, a five-field ``cron`` expression (evaluated in UTC, so a
daylight-saving change never skips or repeats a run), or ``keep_running`` (a long-running
spider, started again whenever it ends: :func:`restart_due`), and may be paused. The agent
that holds the scheduler lock (:data:`SCHEDULER_LOCK`) reads these rows, reloads them when
``updated_at`` moves, and writes back ``next_run_at`` and ``last_fired_at``. Sync functions
serve the agent, the ``*_async`` twins serve the control API; both run the same SQL constants
and validation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import msgspec
import psycopg
from apscheduler.triggers.cron import CronTrigger
from psycopg.rows import class_row

from roomwatch.catalog import SPIDERS, held_spiders, stream_spider_accounts
from roomwatch.config import Config
from roomwatch.errors import ScheduleError

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]

# (namespace, id) of the session advisory lock that makes one agent the scheduling one.
SCHEDULER_LOCK = (0x726F6F6D, 1)
DEFAULT_MIN_INTERVAL = 60
MAX_INTERVAL = 366 * 24 * 3600  # a year; also keeps the value inside the integer column

# name -> (spider, interval in seconds, or None: keep running): the schedules a fresh database
# starts with. A schedule whose spider lacks its required setting (``SpiderInfo.requires``,
# ``events.url`` for the stream) is there but does not fire until the setting is made.
DEFAULT_SCHEDULES: dict[str, tuple[str, int | None]] = {
    "affiliate": ("affiliate", 5 * 60),
    "cbhours_live": ("cbhours_live", 5 * 60),
    "cbhours_activity": ("cbhours_activity", 24 * 3600),
    "followed_cams": ("followed_cams", 30 * 60),
    "followers": ("followers", 6 * 3600),
    # The site refreshes the Stats API every 5 minutes; fires only once stats.url is set.
    "room_stats": ("room_stats", 5 * 60),
    "room_events": ("room_events", None),
}

# The spiders that read one account (a login session's lists, an Events or Stats URL's stream).
# While a spider can read two accounts or more, each account gets a schedule of its own,
# ``SPIDER@ACCOUNT`` (:func:`sync_account_schedules`), and the spider's default schedule, which
# names no account, stands aside (the scheduler does not fire it).
PER_ACCOUNT_SPIDERS = ("followed_cams", "followers", "room_events", "room_stats")

# A keep-running schedule starts its spider again at once after a success; after n failed
# (or cancelled, or interrupted) runs in a row it waits base * 2 ** (n - 1) seconds, at most cap.
RESTART_BASE_SECONDS = 10.0
RESTART_CAP_SECONDS = 15 * 60.0


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """One schedule.

    Attributes:
        name: its key (``PATCH /schedules/{name}``).
        spider: what it runs.
        args: the spider arguments it passes.
        interval_seconds: run every this many seconds (exclusive with ``cron``).
        cron: run at the times of this five-field crontab expression, in UTC.
        keep_running: neither: the spider runs all the time; it is started again whenever it
            ends (at once after a success, after a growing back-off after failures).
        paused: a paused schedule fires nothing until resumed.
        updated_at: when it was last changed (the agent reloads it then).
        next_run_at: the next run as planned by the scheduling agent; null while paused or
            while no agent schedules.
        last_fired_at: when it last fired (whether or not the crawl could start).
        last_job_id: the job its last firing queued.
        account: the account a per-account schedule crawls (its ``account`` argument); null
            for the others.
        held: why it does not fire although not paused (a setting its spider needs is empty,
            per-account schedules run instead of it, ...); null when it fires. Not stored: the
            API and the status report work it out from the configuration (:func:`explain_holds`),
            as the scheduling agent does.
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
    keep_running: bool = False
    account: str | None = None
    held: str | None = None


_COLUMNS = (
    "name, spider, args, interval_seconds, cron, paused, updated_at, next_run_at, "
    "last_fired_at, last_job_id, keep_running, account"
)
ALL_SCHEDULES = f"SELECT {_COLUMNS} FROM schedules ORDER BY name"
SCHEDULES_VERSION = (
    "SELECT md5(coalesce(string_agg(name || '@' || updated_at::text, ',' ORDER BY name), '')) "
    "FROM schedules"
)
# Setting one of interval and cron clears the other (the table allows exactly one). A
# keep-running schedule has neither: its row is left alone when either is asked for (and
# :data:`KEEP_RUNNING` tells the caller why nothing changed).
KEEP_RUNNING = "SELECT keep_running FROM schedules WHERE name = %s"
UPDATE_SCHEDULE = f"""
UPDATE schedules SET
    interval_seconds = CASE WHEN %(cron)s::text IS NOT NULL THEN NULL
                            ELSE coalesce(%(interval)s::int, interval_seconds) END,
    cron = CASE WHEN %(interval)s::int IS NOT NULL THEN NULL ELSE coalesce(%(cron)s, cron) END,
    paused = coalesce(%(paused)s, paused),
    updated_at = clock_timestamp()
WHERE name = %(name)s
  AND NOT (keep_running AND (%(interval)s::int IS NOT NULL OR %(cron)s::text IS NOT NULL))
RETURNING {_COLUMNS}
"""
_NOT_TIMED = "a keep-running schedule has no interval or cron; only paused can change"


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
            "INSERT INTO schedules (name, spider, interval_seconds, keep_running) "
            "SELECT name, spider, seconds, seconds IS NULL "
            "FROM unnest(%s::text[], %s::text[], %s::int[]) AS d(name, spider, seconds) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            [
                list(DEFAULT_SCHEDULES),
                [spider for spider, _ in DEFAULT_SCHEDULES.values()],
                [seconds for _, seconds in DEFAULT_SCHEDULES.values()],
            ],
        ).fetchall()
    return [str(row[0]) for row in rows]


# The accounts whose login sessions the logged-in crawls can use (expired ones too: their
# schedule's failing job is how the owner hears that a new login is needed).
SESSION_ACCOUNTS = (
    "SELECT DISTINCT account FROM login_sessions WHERE account <> 'unknown' ORDER BY account"
)
# ``SPIDER@ACCOUNT`` for each new (spider, account), timed as the spider's default schedule is.
ADD_ACCOUNT_SCHEDULES = """
INSERT INTO schedules (name, spider, args, account, interval_seconds, cron, keep_running, paused)
SELECT w.spider || '@' || w.account, w.spider, jsonb_build_object('account', w.account),
       w.account, d.interval_seconds, d.cron, d.keep_running, d.paused
FROM unnest(%s::text[], %s::text[]) AS w(spider, account)
JOIN schedules d ON d.name = w.spider
ON CONFLICT (name) DO NOTHING
RETURNING name
"""


def sync_account_schedules(conn: Connection, streams: dict[str, list[str]]) -> list[str]:
    """Adds the missing per-account schedules; returns their names.

    A per-account spider (:data:`PER_ACCOUNT_SPIDERS`) that can read two accounts or more gets
    ``SPIDER@ACCOUNT`` for each, timed (interval or cron, keep running, paused) as its default
    schedule is when the account appears; existing rows are left alone, so API changes stay.

    Args:
        streams: the stream spiders' accounts (``roomwatch.catalog.stream_accounts``); the
            logged-in crawls' are those of the stored login sessions.
    """
    with conn.transaction():
        sessions = [str(row[0]) for row in conn.execute(SESSION_ACCOUNTS).fetchall()]
        wanted: list[tuple[str, str]] = []
        for spider in PER_ACCOUNT_SPIDERS:
            accounts = streams.get(spider, []) if spider in streams else sessions
            if len(accounts) >= 2:
                wanted += [(spider, account) for account in accounts]
        if not wanted:
            return []
        rows = conn.execute(
            ADD_ACCOUNT_SCHEDULES,
            [[spider for spider, _ in wanted], [account for _, account in wanted]],
        ).fetchall()
    return [str(row[0]) for row in rows]


def list_schedules(conn: Connection) -> list[Schedule]:
    """Every schedule, by name."""
    with conn.cursor(row_factory=class_row(Schedule)) as cur:
        return cur.execute(ALL_SCHEDULES).fetchall()


def hold_reasons(
    schedules: Iterable[Schedule],
    held: Mapping[str, str],
    streams: Mapping[str, Sequence[str]],
) -> dict[str, str]:
    """Why each schedule that must not fire does not, by schedule name.

    Args:
        held: spiders that cannot run, with the reason
            (:func:`roomwatch.catalog.held_spiders`): their schedules are held.
        streams: the accounts each stream spider can read
            (:func:`roomwatch.catalog.stream_spider_accounts`): a per-account schedule of an
            account its URL setting does not name is held.

    A spider's default schedule (no account) is held while per-account schedules of that
    spider exist (:data:`PER_ACCOUNT_SPIDERS`).
    """
    schedules = list(schedules)
    per_account: dict[str, list[str]] = {}
    for schedule in schedules:
        if schedule.account and schedule.spider in PER_ACCOUNT_SPIDERS:
            per_account.setdefault(schedule.spider, []).append(schedule.name)
    reasons = {}
    for schedule in schedules:
        name, spider, account = schedule.name, schedule.spider, schedule.account
        if spider in held:
            reasons[name] = held[spider]
        elif account and spider in streams and account not in streams[spider]:
            reasons[name] = f"{SPIDERS[spider].requires} names no account {account}"
        elif not account and spider in per_account:
            others = ", ".join(sorted(per_account[spider]))
            reasons[name] = f"the per-account schedules run instead ({others})"
    return reasons


def explain_holds(schedules: Sequence[Schedule], config: Config) -> list[Schedule]:
    """``schedules`` with ``held`` filled in as the scheduling agent decides it for ``config``."""
    reasons = hold_reasons(schedules, held_spiders(config), stream_spider_accounts(config))
    return [msgspec.structs.replace(s, held=reasons.get(s.name)) for s in schedules]


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
        schedule = cur.execute(UPDATE_SCHEDULE, params).fetchone()
        if schedule is None:
            _refuse_timing(conn.execute(KEEP_RUNNING, [name]).fetchone())
        return schedule


def _refuse_timing(row: tuple[Any, ...] | None) -> None:
    """Why an update found its schedule but changed nothing (a keep-running one was given an
    interval or cron); nothing if there is no such schedule."""
    if row is not None and row[0]:
        raise ScheduleError("interval_seconds", _NOT_TIMED)


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
        schedule = await cur.fetchone()
        if schedule is None:
            _refuse_timing(await (await conn.execute(KEEP_RUNNING, [name])).fetchone())
        return schedule


# The spider's active job, if any, and its newest finished jobs (enough to count a streak of
# failures up to the cap), with the database's clock. A run cancelled because its agent stopped
# says nothing about the spider: it is neither a success nor a failure of the streak.
RESTART_STATE = """
SELECT now(),
       EXISTS (SELECT 1 FROM crawl_jobs WHERE spider = %(spider)s
               AND (%(account)s::text IS NULL OR account = %(account)s)
               AND status IN ('queued', 'running')),
       coalesce((SELECT array_agg(status ORDER BY finished_at DESC, job_id DESC) FROM (
           SELECT job_id, status, finished_at FROM crawl_jobs
           WHERE spider = %(spider)s AND (%(account)s::text IS NULL OR account = %(account)s)
             AND finished_at IS NOT NULL AND finish_reason IS DISTINCT FROM 'shutdown'
           ORDER BY finished_at DESC, job_id DESC LIMIT 16) recent), '{}'),
       (SELECT max(finished_at) FROM crawl_jobs
        WHERE spider = %(spider)s AND (%(account)s::text IS NULL OR account = %(account)s))
"""


def restart_delay(failures: int) -> float:
    """Seconds a keep-running schedule waits after ``failures`` unsuccessful runs in a row."""
    if failures <= 0:
        return 0.0
    return min(RESTART_CAP_SECONDS, RESTART_BASE_SECONDS * 2.0 ** min(failures - 1, 16))


def restart_due(
    conn: Connection, spider: str, account: str | None = None
) -> tuple[dt.datetime, float] | None:
    """When a keep-running schedule may start ``spider`` again (``account``'s, for a
    per-account schedule; None: its jobs of any account), and the seconds until then (0 when
    due); None while one of those jobs is queued or running.

    Counted from the end of its newest finished job: at once after a success (or if it never
    ran), :func:`restart_delay` after a streak of failed, cancelled or interrupted runs (one
    cancelled by its agent's shutdown does not count, so an agent restart costs no back-off). The
    state lives in ``crawl_jobs`` and the database's clock, so a restarted or another agent
    keeps the same back-off.
    """
    row = conn.execute(RESTART_STATE, {"spider": spider, "account": account}).fetchone()
    assert row is not None
    now, active, statuses, last_end = row
    if active:
        return None
    failures = 0
    for status in statuses:
        if status == "succeeded":
            break
        failures += 1
    if last_end is None:
        return now, 0.0
    due = last_end + dt.timedelta(seconds=restart_delay(failures))
    return max(now, due), max(0.0, (due - now).total_seconds())
