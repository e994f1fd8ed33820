"""Liveness and status routes."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from storage.status import (
    LAST_JOB_PER_SPIDER,
    ROW_COUNTS,
    SESSION_HEALTH,
    JobSummary,
    StatusReport,
)


class Health(msgspec.Struct, frozen=True):
    """The agent answers; nothing more is claimed."""

    status: str


class SystemController(Controller):
    """``/health`` (no auth) and ``/status``."""

    @get("/health", summary="Liveness, no auth")
    async def health(self) -> Health:
        return Health(status="ok")

    @get("/status", summary="Last job per spider, session health, row counts")
    async def status(self, db: AsyncConnection[Any], database_label: str) -> StatusReport:
        cur = db.cursor(row_factory=dict_row)
        jobs = await (await cur.execute(LAST_JOB_PER_SPIDER)).fetchall()
        sessions = {
            row["status"]: row["n"] for row in await (await cur.execute(SESSION_HEALTH)).fetchall()
        }
        counts = await (await cur.execute(ROW_COUNTS)).fetchone() or {}
        return StatusReport(
            database=database_label,
            pending_migrations=[],
            last_jobs=[msgspec.convert(job, JobSummary) for job in jobs],
            sessions=sessions,
            counts={key: int(value) for key, value in counts.items()},
        )
