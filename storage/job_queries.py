"""The list of crawl jobs the control API and the Agent page show: newest first, filtered, paged.

The statements that create, read and move one job are :mod:`storage.jobs`' (with their
``_async`` twins); this is the one composed listing, asynchronous only.
"""

from __future__ import annotations

from psycopg import sql
from psycopg.rows import class_row

from storage.jobs import AsyncConnection, Job, Status


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
