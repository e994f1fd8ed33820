"""Crawl job rows: the state machine every crawl goes through, whoever triggered it.

``queued -> running -> succeeded | failed | cancelled``; ``queued -> cancelled``; and
``running -> interrupted`` for jobs whose agent died. A partial unique index keeps at most one
queued-or-running job per spider, so two triggers racing for the same spider cannot both win.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from roomwatch.errors import JobError

Connection = psycopg.Connection[Any]
Trigger = Literal["schedule", "api", "cli"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One crawl job row."""

    job_id: int
    spider: str
    args: dict[str, Any]
    trigger: str
    status: str
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    pid: int | None
    items: dict[str, int]
    requests: int
    retries: int
    errors: int
    stats: dict[str, Any]
    finish_reason: str | None
    error_message: str | None
    log_path: str | None
    cancel_requested_at: dt.datetime | None
    heartbeat_at: dt.datetime | None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


class JobConflict(JobError):
    """A job of that spider is already queued or running; ``existing`` is its id."""

    def __init__(self, spider: str, existing: int) -> None:
        super().__init__(f"a {spider} job is already queued or running (#{existing})")
        self.existing = existing


def _job(conn: Connection, query: str, params: dict[str, Any]) -> Job | None:
    with conn.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(query, params).fetchone()


def create_job(conn: Connection, spider: str, args: dict[str, Any], trigger: Trigger) -> Job:
    """Queues a job.

    Raises:
        JobConflict: one of that spider is already queued or running.
    """
    try:
        with conn.transaction():
            job = _job(
                conn,
                "INSERT INTO crawl_jobs (spider, args, trigger) VALUES (%(s)s, %(a)s, %(t)s) "
                "RETURNING *",
                {"s": spider, "a": Jsonb(args), "t": trigger},
            )
    except psycopg.errors.UniqueViolation:
        active = active_job(conn, spider)
        raise JobConflict(spider, active.job_id if active else 0) from None
    assert job is not None
    return job


def active_job(conn: Connection, spider: str) -> Job | None:
    """The queued or running job of ``spider``, if any."""
    return _job(
        conn,
        "SELECT * FROM crawl_jobs WHERE spider = %(s)s AND status IN ('queued', 'running')",
        {"s": spider},
    )


def get_job(conn: Connection, job_id: int) -> Job | None:
    """One job by id."""
    return _job(conn, "SELECT * FROM crawl_jobs WHERE job_id = %(id)s", {"id": job_id})


def start_job(conn: Connection, job_id: int, pid: int, log_path: str) -> bool:
    """``queued -> running``; False if the job is no longer queued (cancelled meanwhile)."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE crawl_jobs SET status = 'running', started_at = now(), pid = %s, "
            "log_path = %s, heartbeat_at = now() WHERE job_id = %s AND status = 'queued'",
            [pid, log_path, job_id],
        )
    return cur.rowcount == 1


def record_progress(conn: Connection, job_id: int, stats: dict[str, Any]) -> None:
    """Stores the crawl's running counters (pages, items, requests) and a heartbeat."""
    with conn.transaction():
        conn.execute(
            "UPDATE crawl_jobs SET stats = %s, items = %s, requests = %s, retries = %s, "
            "errors = %s, heartbeat_at = now() WHERE job_id = %s AND status = 'running'",
            [Jsonb(stats), Jsonb(_items(stats)), *_counters(stats), job_id],
        )


def finish_job(
    conn: Connection,
    job_id: int,
    status: Status,
    *,
    finish_reason: str,
    error_message: str | None = None,
    stats: dict[str, Any] | None = None,
) -> bool:
    """Moves a queued or running job to a final status; False if it was already final."""
    sets = "status = %s, finished_at = now(), finish_reason = %s, error_message = %s"
    params: list[Any] = [status, finish_reason, error_message]
    if stats is not None:
        sets += ", stats = %s, items = %s, requests = %s, retries = %s, errors = %s"
        params += [Jsonb(stats), Jsonb(_items(stats)), *_counters(stats)]
    with conn.transaction():
        cur = conn.execute(
            f"UPDATE crawl_jobs SET {sets} WHERE job_id = %s AND status IN ('queued', 'running')",
            [*params, job_id],
        )
    return cur.rowcount == 1


def request_cancel(conn: Connection, job_id: int) -> Job | None:
    """Cancels a queued job at once; flags a running one for its runner to stop."""
    with conn.transaction():
        conn.execute(
            "UPDATE crawl_jobs SET status = 'cancelled', finished_at = now(), "
            "finish_reason = 'cancelled', cancel_requested_at = now() "
            "WHERE job_id = %s AND status = 'queued'",
            [job_id],
        )
        conn.execute(
            "UPDATE crawl_jobs SET cancel_requested_at = now() "
            "WHERE job_id = %s AND status = 'running' AND cancel_requested_at IS NULL",
            [job_id],
        )
    return get_job(conn, job_id)


def interrupt_abandoned(conn: Connection) -> list[int]:
    """Marks jobs left queued or running by a dead agent as ``interrupted`` (at agent start)."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE crawl_jobs SET status = 'interrupted', finished_at = now(), "
            "finish_reason = 'interrupted', error_message = 'the agent stopped during this job' "
            "WHERE status IN ('queued', 'running') RETURNING job_id"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _items(stats: dict[str, Any]) -> dict[str, int]:
    return {
        key.removeprefix("items/"): int(value)
        for key, value in stats.items()
        if key.startswith("items/")
    }


def _counters(stats: dict[str, Any]) -> list[int]:
    return [
        int(stats.get("downloader/request_count", 0)),
        int(stats.get("retry/count", 0)),
        int(stats.get("log_count/ERROR", 0)),
    ]
