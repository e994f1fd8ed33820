"""Liveness and status routes."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import msgspec
import psycopg
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from control_api.params import Db
from roomwatch.config import Config
from storage.database import ping_async
from storage.status import StatusReport, read_status_async

# /health asks the database at most this often (a load test hammering it must measure the
# framework, not PostgreSQL), and waits this long for an answer.
HEALTH_CACHE_SECONDS = 1.0
HEALTH_TIMEOUT_SECONDS = 2.0


class Health(msgspec.Struct, frozen=True):
    """Whether the agent answers and whether its database does; nothing more is said."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]


HEALTHY = Health(status="ok", database="ok")
DEGRADED = Health(status="degraded", database="unavailable")


async def _database_answers(pool: AsyncConnectionPool[Any]) -> bool:
    """``SELECT 1`` through the pool; after a failure the pool drops its dead connections
    (a database restart kills them all) and one more try tells whether the server is back."""
    for attempt in range(2):
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                async with pool.connection() as conn:
                    await ping_async(conn)
            return True
        except (psycopg.Error, PoolTimeout, TimeoutError):
            if attempt == 0:
                try:
                    async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                        await pool.check()
                except (psycopg.Error, PoolTimeout, TimeoutError):
                    return False
    return False


async def database_health(state: State) -> bool:
    """The database's answer, asked at most once per :data:`HEALTH_CACHE_SECONDS`."""
    lock: asyncio.Lock = state.setdefault("health_lock", asyncio.Lock())
    async with lock:
        checked_at, answered = state.get("health_checked", (float("-inf"), False))
        if time.monotonic() - checked_at >= HEALTH_CACHE_SECONDS:
            answered = await _database_answers(state.pool)
            state.health_checked = (time.monotonic(), answered)
        return bool(answered)


class SystemController(Controller):
    """``/health`` (no auth) and ``/status``."""

    @get(
        "/health",
        summary="Liveness and database reachability, no auth",
        description="200 with `database: ok` when the database answers a query; 503 with "
        "`status: degraded, database: unavailable` when it does not (no detail is given).",
        responses={503: ResponseSpec(Health, description="the database does not answer")},
    )
    async def health(self, state: State) -> Response[Health]:
        if await database_health(state):
            return Response(HEALTHY, status_code=200)
        return Response(DEGRADED, status_code=503)

    @get(
        "/status",
        summary="Scheduler and next runs, last job per spider, sessions, counts, alerts",
    )
    async def status(
        self, db: Db, database_label: NamedDependency[str], config: NamedDependency[Config]
    ) -> StatusReport:
        """Everything an owner checks first; ``alerts`` lists what needs acting on."""
        return await read_status_async(db, database_label, config)
