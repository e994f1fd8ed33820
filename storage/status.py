"""The status report: scheduler and next runs, last job per spider, sessions, counts, alerts.

The same statements serve ``roomwatch status`` (sync) and ``GET /status`` (async): each side
runs :func:`status_queries` and hands the rows to :func:`assemble_status`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from roomwatch.config import Config
from storage.alerts import (
    EXPIRED_SESSIONS,
    FAILING_SPIDERS,
    HELD_FOLLOW_CHANGES,
    TOKEN_REFUSALS,
    Alert,
    alert_params,
    build_alerts,
)
from storage.migrator import pending_migrations
from storage.schedules import ALL_SCHEDULES, SCHEDULER_LOCK, Schedule, explain_holds

LAST_JOB_PER_SPIDER = """
SELECT DISTINCT ON (spider) job_id, spider, status, trigger, queued_at, started_at, finished_at,
       finish_reason, error_message
FROM crawl_jobs ORDER BY spider, job_id DESC
"""

SESSION_HEALTH = "SELECT status, count(*) AS n FROM login_sessions GROUP BY status"

ROW_COUNTS = """
SELECT p.persons, p.following, p.followers,
       (SELECT count(*) FROM follow_events) AS follow_events,
       (SELECT count(*) FROM crawl_jobs) AS crawl_jobs,
       (SELECT COALESCE(sum(c.reltuples), 0)::bigint FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'affiliate_api_snapshots'::regclass AND c.reltuples > 0)
           AS affiliate_snapshots_estimate
FROM (SELECT count(*) AS persons, count(*) FILTER (WHERE following) AS following,
             count(*) FILTER (WHERE follower) AS followers
      FROM persons) p  -- one pass over persons instead of three
"""


# Which session holds the scheduler lock, named by the application_name it connected with.
SCHEDULER_HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(ns)s::oid
  AND l.objid = %(id)s::oid AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class SchedulerState(msgspec.Struct, frozen=True, kw_only=True):
    """Whether an agent schedules crawls on this database, and the plan.

    Attributes:
        active: an agent holds the scheduler lock (schedules fire).
        holder: which one (host and process id), when active.
        schedules: every schedule; ``next_run_at`` is null unless active and not paused.
    """

    active: bool
    holder: str | None
    schedules: list[Schedule]


class JobSummary(msgspec.Struct, frozen=True):
    """The newest job of one spider."""

    job_id: int
    spider: str
    status: str
    trigger: str
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    finish_reason: str | None
    error_message: str | None


class StatusReport(msgspec.Struct, frozen=True):
    """What ``roomwatch status`` and ``GET /status`` show."""

    database: str
    pending_migrations: list[str]
    last_jobs: list[JobSummary]
    sessions: dict[str, int]
    counts: dict[str, int]
    scheduler: SchedulerState | None = None
    alerts: list[Alert] = msgspec.field(default_factory=list)


def status_queries(failures_in_a_row: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The statements of the report, by name, with their parameters (run with ``dict_row``)."""
    return {
        "jobs": (LAST_JOB_PER_SPIDER, {}),
        "sessions": (SESSION_HEALTH, {}),
        "counts": (ROW_COUNTS, {}),
        "holder": (SCHEDULER_HOLDER, {"ns": SCHEDULER_LOCK[0], "id": SCHEDULER_LOCK[1]}),
        "schedules": (ALL_SCHEDULES, {}),
        "expired": (EXPIRED_SESSIONS, {}),
        "failing": (FAILING_SPIDERS, alert_params(failures_in_a_row)),
        "held": (HELD_FOLLOW_CHANGES, {}),
        "refused": (TOKEN_REFUSALS, {"spiders": alert_params(failures_in_a_row)["spiders"]}),
    }


def assemble_status(
    database: str, rows: dict[str, list[dict[str, Any]]], config: Config
) -> StatusReport:
    """The report from the rows of :func:`status_queries`; ``config`` says which schedules are
    held and why, as the scheduling agent decides it."""
    failures_in_a_row = config.alerts.failures_in_a_row
    holder = rows["holder"][0]["application_name"] if rows["holder"] else None
    active = bool(rows["holder"])
    schedules = explain_holds([msgspec.convert(row, Schedule) for row in rows["schedules"]], config)
    if not active:
        # A plan written by an agent that is gone is no plan: nothing will fire.
        schedules = [msgspec.structs.replace(s, next_run_at=None) for s in schedules]
    counts = rows["counts"][0] if rows["counts"] else {}
    return StatusReport(
        database=database,
        pending_migrations=[],
        last_jobs=[msgspec.convert(job, JobSummary) for job in rows["jobs"]],
        sessions={row["status"]: row["n"] for row in rows["sessions"]},
        counts={key: int(value) for key, value in counts.items()},
        scheduler=SchedulerState(active=active, holder=holder or None, schedules=schedules),
        alerts=build_alerts(
            [tuple(row.values()) for row in rows["expired"]],
            [tuple(row.values()) for row in rows["failing"]],
            failures_in_a_row,
            [tuple(row.values()) for row in rows["held"]],
            [tuple(row.values()) for row in rows.get("refused", [])],
        ),
    )


def read_status(conn: psycopg.Connection[Any], database: str, config: Config) -> StatusReport:
    """Builds the report from one connection (``database`` says which server, without secrets)."""
    pending = pending_migrations(conn)
    if pending:
        return StatusReport(database, pending, [], {}, {})
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {
            name: cur.execute(query, params).fetchall()
            for name, (query, params) in status_queries(config.alerts.failures_in_a_row).items()
        }
    return assemble_status(database, rows, config)


async def read_status_async(
    conn: psycopg.AsyncConnection[Any], database: str, config: Config
) -> StatusReport:
    """:func:`read_status` for the control API (whose agent has applied every migration)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    async with conn.cursor(row_factory=dict_row) as cur:
        for name, (query, params) in status_queries(config.alerts.failures_in_a_row).items():
            await cur.execute(query, params)
            rows[name] = await cur.fetchall()
    return assemble_status(database, rows, config)
