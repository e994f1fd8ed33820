"""Crawl jobs for the control API: queue, list, read and cancel, over an async connection.

The API only writes job rows; the agents' workers run them. The statements that change a job
are the constants of :mod:`storage.jobs`, so the API and the agent move jobs through the very
same state machine.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from roomwatch.errors import JobConflict
from storage.jobs import (
    ACTIVE_JOB,
    CANCEL_QUEUED,
    CANCEL_RUNNING,
    INSERT_JOB,
    JOB_BY_ID,
    Job,
    Status,
    Trigger,
)

AsyncConnection = psycopg.AsyncConnection[Any]


async def _one(conn: AsyncConnection, query: str, params: dict[str, Any]) -> Job | None:
    async with conn.cursor(row_factory=class_row(Job)) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def create_job_async(
    conn: AsyncConnection, spider: str, args: dict[str, Any], trigger: Trigger
) -> Job:
    """Queues a job (the caller has checked the spider name).

    Raises:
        JobConflict: one of that spider is already queued or running (``existing`` is its id).
    """
    try:
        async with conn.transaction():
            job = await _one(conn, INSERT_JOB, {"s": spider, "a": Jsonb(args), "t": trigger})
    except psycopg.errors.UniqueViolation:
        active = await _one(conn, ACTIVE_JOB, {"s": spider})
        raise JobConflict(spider, active.job_id if active else 0) from None
    assert job is not None
    return job


async def get_job_async(conn: AsyncConnection, job_id: int) -> Job | None:
    """One job by id."""
    return await _one(conn, JOB_BY_ID, {"id": job_id})


async def list_jobs(
    conn: AsyncConnection,
    *,
    spider: str | None = None,
    status: Status | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Job]:
    """Jobs newest first, optionally of one spider and status, with ids below ``before``."""
    where: list[sql.Composable] = []
    if spider is not None:
        where.append(sql.SQL("spider = {}").format(sql.Placeholder("spider")))
    if status is not None:
        where.append(sql.SQL("status = {}").format(sql.Placeholder("status")))
    if before is not None:
        where.append(sql.SQL("job_id < {}").format(sql.Placeholder("before")))
    query = sql.SQL("SELECT * FROM crawl_jobs {where} ORDER BY job_id DESC LIMIT {limit}").format(
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        limit=sql.Placeholder("limit"),
    )
    params = {"spider": spider, "status": status, "before": before, "limit": limit}
    async with conn.cursor(row_factory=class_row(Job)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def request_cancel_async(conn: AsyncConnection, job_id: int) -> Job | None:
    """A queued job is cancelled at once; a running one is flagged for its runner to stop."""
    async with conn.transaction():
        await conn.execute(CANCEL_QUEUED, {"id": job_id})
        await conn.execute(CANCEL_RUNNING, {"id": job_id})
    return await get_job_async(conn, job_id)
