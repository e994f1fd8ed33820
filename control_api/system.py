"""Liveness and status routes."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from control_api.params import Db
from roomwatch.config import Config
from storage.status import StatusReport, read_status_async


class Health(msgspec.Struct, frozen=True):
    """The agent answers; nothing more is claimed."""

    status: str


class SystemController(Controller):
    """``/health`` (no auth) and ``/status``."""

    @get("/health", summary="Liveness, no auth")
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/status",
        summary="Scheduler and next runs, last job per spider, sessions, counts, alerts",
    )
    async def status(
        self, db: Db, database_label: NamedDependency[str], config: NamedDependency[Config]
    ) -> StatusReport:
        """Everything an owner checks first; ``alerts`` lists what needs acting on."""
        return await read_status_async(db, database_label, config.alerts.failures_in_a_row)
