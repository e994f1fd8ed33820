"""Crawl job rows: the state machine every crawl goes through, whoever triggered it.

``queued -> running -> succeeded | failed | cancelled``; ``queued -> cancelled``; and
``running -> interrupted`` for jobs whose agent died. A partial unique index keeps at most one
queued-or-running job per spider, so two triggers racing for the same spider cannot both win.

Whoever supervises a running job (an agent's worker, or ``roomwatch crawl``) holds a session
advisory lock on it (:data:`JOB_LOCK_SQL`) for as long as it watches the crawl. The lock dies
with the supervisor's connection, so "running, and nobody holds its lock" is exactly "its
supervisor is gone", whichever process or machine it ran on: :func:`interrupt_abandoned` relies
on that instead of guessing from heartbeats. The control API moves jobs with the ``_async``
twins of the same functions, so both run the very same statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any, Literal

import msgspec
import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from roomwatch.errors import DatabaseError, JobConflict, JobError
from storage.database import connect

Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
Trigger = Literal["schedule", "api", "cli"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "interrupted"})

# Advisory lock keys are (namespace, id) pairs; the migrator uses a single-bigint key, which
# PostgreSQL keeps in a separate key space.
JOB_LOCK_NAMESPACE = 0x726F6F6E
JOB_LOCK_SQL = "SELECT pg_try_advisory_lock(%s, (%s::bigint %% 2147483647)::int)"
# A queued CLI job is started by its own process right away; one older than this was left
# behind by a ``roomwatch crawl`` that died before starting it.
CLI_QUEUE_TIMEOUT_SECONDS = 60

# A job of a per-account crawl (an ``account`` argument) is that account's; one may be queued
# or running per spider and account (migration 0020).
INSERT_JOB = (
    "INSERT INTO crawl_jobs (spider, args, trigger, account) "
    "VALUES (%(s)s, %(a)s, %(t)s, lower(%(a)s->>'account')) RETURNING *"
)
ACTIVE_JOB = (
    "SELECT * FROM crawl_jobs WHERE spider = %(s)s AND status IN ('queued', 'running') "
    "AND account IS NOT DISTINCT FROM lower(%(a)s->>'account')"
)
JOB_BY_ID = "SELECT * FROM crawl_jobs WHERE job_id = %(id)s"
CANCEL_QUEUED = (
    "UPDATE crawl_jobs SET status = 'cancelled', finished_at = now(), "
    "finish_reason = 'cancelled', error_message = 'cancelled before it started', "
    "cancel_requested_at = now() WHERE job_id = %(id)s AND status = 'queued'"
)
CANCEL_RUNNING = (
    "UPDATE crawl_jobs SET cancel_requested_at = now() "
    "WHERE job_id = %(id)s AND status = 'running' AND cancel_requested_at IS NULL"
)


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
    account: str | None = None  # the account a per-account spider reads (migration 0020)

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


def _job(conn: Connection, query: str, params: dict[str, Any]) -> Job | None:
    with conn.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(query, params).fetchone()


async def _job_async(conn: AsyncConnection, query: str, params: dict[str, Any]) -> Job | None:
    async with conn.cursor(row_factory=class_row(Job)) as cur:
        return await (await cur.execute(query, params)).fetchone()


def create_job(conn: Connection, spider: str, args: dict[str, Any], trigger: Trigger) -> Job:
    """Queues a job.

    Raises:
        JobConflict: one of that spider is already queued or running.
    """
    params = {"s": spider, "a": Jsonb(args), "t": trigger}
    try:
        with conn.transaction():
            job = _job(conn, INSERT_JOB, params)
    except psycopg.errors.UniqueViolation:
        active = _job(conn, ACTIVE_JOB, params)
        raise JobConflict(spider, active.job_id if active else 0) from None
    except psycopg.errors.ForeignKeyViolation:
        raise _no_account(args) from None
    assert job is not None
    return job


async def create_job_async(
    conn: AsyncConnection, spider: str, args: dict[str, Any], trigger: Trigger
) -> Job:
    """:func:`create_job` on an asynchronous connection (the caller has checked the spider)."""
    params = {"s": spider, "a": Jsonb(args), "t": trigger}
    try:
        async with conn.transaction():
            job = await _job_async(conn, INSERT_JOB, params)
    except psycopg.errors.UniqueViolation:
        active = await _job_async(conn, ACTIVE_JOB, params)
        raise JobConflict(spider, active.job_id if active else 0) from None
    except psycopg.errors.ForeignKeyViolation:
        raise _no_account(args) from None
    assert job is not None
    return job


def _no_account(args: dict[str, Any]) -> JobError:
    return JobError(f"account: no account {str(args.get('account', '')).lower()!r} here")


def active_job(conn: Connection, spider: str, account: str | None = None) -> Job | None:
    """The queued or running job of ``spider`` (of ``account``, for a per-account crawl)."""
    return _job(conn, ACTIVE_JOB, {"s": spider, "a": Jsonb({"account": account})})


def get_job(conn: Connection, job_id: int) -> Job | None:
    """One job by id."""
    return _job(conn, JOB_BY_ID, {"id": job_id})


async def get_job_async(conn: AsyncConnection, job_id: int) -> Job | None:
    """:func:`get_job` on an asynchronous connection."""
    return await _job_async(conn, JOB_BY_ID, {"id": job_id})


def lock_job(conn: Connection, job_id: int) -> bool:
    """Takes the job's supervisor lock on ``conn`` (autocommit); False if someone holds it.

    Held until ``conn`` closes: the supervisor keeps that connection open while it watches
    the crawl, and a dead supervisor's connection (hence lock) goes with it.
    """
    row = conn.execute(JOB_LOCK_SQL, [JOB_LOCK_NAMESPACE, job_id]).fetchone()
    return bool(row and row[0])


def is_supervised(conn: Connection, job_id: int) -> bool:
    """Whether some live connection holds the job's supervisor lock.

    A transaction-level try-lock conflicts with the supervisor's session lock, and is let go
    at once: the crawl process asks this (its watchdog) without ever holding the lock itself.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, (%s::bigint %% 2147483647)::int)",
            [JOB_LOCK_NAMESPACE, job_id],
        ).fetchone()
    return not (row and row[0])


def supervision(conninfo: str, job_id: int) -> tuple[str | None, bool] | None:
    """``(status, supervised)`` of a job, or None while the database cannot be asked.

    For a crawl's watchdog, which must outlive a database restart rather than die of it.
    """
    try:
        with connect(conninfo, autocommit=True) as conn:
            job = get_job(conn, job_id)
            return (job.status if job else None), is_supervised(conn, job_id)
    except (DatabaseError, psycopg.Error):
        return None


def record_interrupted(conninfo: str, job_id: int) -> bool:
    """Ends a job ``interrupted`` because its supervisor is gone; False if that failed."""
    try:
        with connect(conninfo) as conn:
            return finish_job(
                conn,
                job_id,
                "interrupted",
                finish_reason="interrupted",
                error_message="the process supervising this job stopped during it",
            )
    except (DatabaseError, psycopg.Error):
        return False


def queued_jobs(conn: Connection, limit: int = 20) -> list[Job]:
    """The oldest queued jobs an agent's worker may run (CLI jobs are run by their CLI)."""
    with conn.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(
            "SELECT * FROM crawl_jobs WHERE status = 'queued' AND trigger <> 'cli' "
            "ORDER BY job_id LIMIT %s",
            [limit],
        ).fetchall()


def running_spiders(conn: Connection) -> set[str]:
    """Spiders with a running job, whoever runs it (browser crawls run one at a time)."""
    rows = conn.execute("SELECT spider FROM crawl_jobs WHERE status = 'running'").fetchall()
    return {str(row[0]) for row in rows}


def running_accounts(conn: Connection, spiders: Collection[str]) -> set[str]:
    """The accounts named by running jobs of ``spiders``, whoever runs them."""
    rows = conn.execute(
        "SELECT DISTINCT account FROM crawl_jobs"
        " WHERE status = 'running' AND account IS NOT NULL AND spider = ANY(%s)",
        [list(spiders)],
    ).fetchall()
    return {str(row[0]) for row in rows}


def is_remote_log(log_path: str) -> bool:
    """A job's log kept elsewhere (a Scrapyd node's URL), not a file of the machine it ran on."""
    return log_path.startswith(("http://", "https://"))


def start_job(conn: Connection, job_id: int, pid: int, log_path: str) -> bool:
    """``queued -> running``; False if the job is no longer queued (cancelled meanwhile)."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE crawl_jobs SET status = 'running', started_at = now(), pid = %s, "
            "log_path = %s, heartbeat_at = now() WHERE job_id = %s AND status = 'queued'",
            [pid, log_path, job_id],
        )
    return cur.rowcount == 1


def record_pid(conn: Connection, job_id: int, pid: int) -> None:
    """Notes the crawl process's pid, so a sweep can find (and kill) an orphaned crawl."""
    conn.execute("UPDATE crawl_jobs SET pid = %s WHERE job_id = %s", [pid, job_id])


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


def enforce_end(conn: Connection, job: Job, *, timeout_seconds: float | None = None) -> bool:
    """What a supervisor makes of a running job's row: True if the crawl must stop now.

    A cancel request is recorded ``cancelled``, an elapsed ``timeout_seconds`` (None: not yet)
    ``failed`` (finish reason ``timeout``), and a job someone else ended ``interrupted`` (an
    agent's sweep, while its supervisor was away) is left as it is. Every runner (a local
    crawl process, a Scrapyd node, ``scrapy crawl`` by hand) stops its crawl on the same rows.
    """
    if job.cancel_requested_at is not None:
        finish_job(
            conn,
            job.job_id,
            "cancelled",
            finish_reason="cancelled",
            error_message="cancelled on request",
        )
        return True
    if job.status == "interrupted":
        return True
    if timeout_seconds is not None:
        finish_job(
            conn,
            job.job_id,
            "failed",
            finish_reason="timeout",
            error_message=f"timed out after {timeout_seconds:g} s",
        )
        return True
    return False


def must_stop(conninfo: str, job_id: int, *, timeout_seconds: float | None) -> bool | None:
    """:func:`enforce_end` on a connection of its own, for a crawl that supervises itself
    (``scrapy crawl`` by hand); None while the database cannot be asked."""
    try:
        with connect(conninfo, autocommit=True) as conn:
            job = get_job(conn, job_id)
            return job is None or enforce_end(conn, job, timeout_seconds=timeout_seconds)
    except (DatabaseError, psycopg.Error):
        return None


def request_cancel(conn: Connection, job_id: int) -> Job | None:
    """Cancels a queued job at once; flags a running one for its runner to stop."""
    with conn.transaction():
        conn.execute(CANCEL_QUEUED, {"id": job_id})
        conn.execute(CANCEL_RUNNING, {"id": job_id})
    return get_job(conn, job_id)


async def request_cancel_async(conn: AsyncConnection, job_id: int) -> Job | None:
    """:func:`request_cancel` on an asynchronous connection."""
    async with conn.transaction():
        await conn.execute(CANCEL_QUEUED, {"id": job_id})
        await conn.execute(CANCEL_RUNNING, {"id": job_id})
    return await get_job_async(conn, job_id)


def cancel_for_shutdown(conn: Connection, job_ids: list[int]) -> list[int]:
    """Records running jobs ``cancelled`` because their agent is stopping; flags them to stop.

    The runners watching them see ``cancel_requested_at`` and stop the processes; the
    crawl's own late result cannot overwrite the final status.
    """
    with conn.transaction():
        rows = conn.execute(
            "UPDATE crawl_jobs SET status = 'cancelled', finished_at = now(), "
            "finish_reason = 'shutdown', error_message = 'the agent was stopped during this "
            "crawl', cancel_requested_at = now() "
            "WHERE job_id = ANY(%s) AND status = 'running' RETURNING job_id",
            [job_ids],
        ).fetchall()
    return [int(r[0]) for r in rows]


def interrupt_abandoned(conn: Connection) -> list[Job]:
    """Marks jobs whose supervisor is gone as ``interrupted``; returns them.

    Run at agent start (and now and then after): a running job whose supervisor lock is free
    lost its agent or ``roomwatch crawl``; a CLI job still queued after a minute lost its CLI.
    Queued API and schedule jobs are left to the workers: they were asked for and never began.
    A transaction-level try-lock conflicts with a live supervisor's session lock, so jobs that
    are alive elsewhere are never touched.
    """
    with conn.transaction(), conn.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(
            "UPDATE crawl_jobs SET status = 'interrupted', finished_at = now(), "
            "finish_reason = 'interrupted', "
            "error_message = 'the process supervising this job stopped during it' "
            # CASE, not AND: only running rows may be try-locked, never a queued one that a
            # runner is about to lock.
            "WHERE status IN ('queued', 'running') AND CASE WHEN status = 'running' "
            "THEN pg_try_advisory_xact_lock(%(ns)s, (job_id %% 2147483647)::int) "
            "ELSE trigger = 'cli' AND queued_at < now() - make_interval(secs => %(cli)s) END "
            "RETURNING *",
            {"ns": JOB_LOCK_NAMESPACE, "cli": CLI_QUEUE_TIMEOUT_SECONDS},
        ).fetchall()


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
