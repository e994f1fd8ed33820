"""The status report: last job per spider, session health, row counts, pending migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from storage.migrator import pending_migrations

LAST_JOB_PER_SPIDER = """
SELECT DISTINCT ON (spider) job_id, spider, status, trigger, queued_at, started_at, finished_at,
       finish_reason, error_message
FROM crawl_jobs ORDER BY spider, job_id DESC
"""

SESSION_HEALTH = "SELECT status, count(*) AS n FROM login_sessions GROUP BY status"

ROW_COUNTS = """
SELECT (SELECT count(*) FROM persons) AS persons,
       (SELECT count(*) FROM persons WHERE following) AS following,
       (SELECT count(*) FROM persons WHERE follower) AS followers,
       (SELECT count(*) FROM follow_events) AS follow_events,
       (SELECT count(*) FROM crawl_jobs) AS crawl_jobs,
       (SELECT COALESCE(sum(c.reltuples), 0)::bigint FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'affiliate_api_snapshots'::regclass AND c.reltuples > 0)
           AS affiliate_snapshots_estimate
"""


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


def read_status(conn: psycopg.Connection[Any], database: str) -> StatusReport:
    """Builds the report from one connection (``database`` says which server, without secrets)."""
    pending = pending_migrations(conn)
    if pending:
        return StatusReport(database, pending, [], {}, {})
    with conn.cursor(row_factory=dict_row) as cur:
        jobs = cur.execute(LAST_JOB_PER_SPIDER).fetchall()
        sessions = {row["status"]: row["n"] for row in cur.execute(SESSION_HEALTH)}
        counts = cur.execute(ROW_COUNTS).fetchone() or {}
    return StatusReport(
        database=database,
        pending_migrations=[],
        last_jobs=[msgspec.convert(job, JobSummary) for job in jobs],
        sessions=sessions,
        counts={key: int(value) for key, value in counts.items()},
    )
