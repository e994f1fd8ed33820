"""The ``/schedules`` routes: list the schedules, change an interval or cron, pause or resume.

Changes are rows in the database: they survive restarts, and the scheduling agent (whichever
holds the scheduler lock) reloads a schedule within seconds of its ``updated_at`` moving.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from psycopg import AsyncConnection

from control_api.params import Db
from control_api.problems import problem_spec
from roomwatch.config import Config
from roomwatch.errors import NotFound
from storage.schedules import (
    MAX_INTERVAL,
    Schedule,
    explain_holds,
    list_schedules_async,
    update_schedule_async,
)

ScheduleName = Annotated[str, PathParameter(max_length=100, description="the schedule's name")]


class ScheduleChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What to change; omitted fields stay as they are.

    Attributes:
        interval_seconds: run every this many seconds (at least the agent's floor, 60 by
            default); replaces a cron expression.
        cron: five-field crontab expression, evaluated in UTC; replaces an interval.
        paused: true pauses the schedule, false resumes it.
    """

    interval_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_INTERVAL)] | None = None
    cron: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    paused: bool | None = None


async def change_schedule(
    db: AsyncConnection[Any], config: Config, name: str, change: ScheduleChange
) -> Schedule:
    """The one way a schedule changes over HTTP: ``PATCH /schedules/{name}`` and the Agent
    page's forms both call this, so they store and refuse exactly the same changes.

    Raises:
        ScheduleError: the change is invalid; its ``field`` names the field.
        NotFound: there is no schedule named ``name``.
    """
    schedule = await update_schedule_async(
        db,
        name,
        interval_seconds=change.interval_seconds,
        cron=change.cron,
        paused=change.paused,
        min_interval=config.agent.min_interval_seconds,
    )
    if schedule is None:
        raise NotFound("name", f"no schedule named {name!r}")
    return schedule


class ScheduleList(msgspec.Struct, frozen=True, kw_only=True):
    """Every schedule, by name (a handful: no pagination needed)."""

    items: list[Schedule]


class ScheduleController(Controller):
    """When each spider runs."""

    path = "/schedules"
    tags = ("schedules",)

    @get("/", summary="Every schedule with its next and last run, and why one is held")
    async def index(self, db: Db, config: NamedDependency[Config]) -> ScheduleList:
        """``next_run_at`` is what the scheduling agent plans (null while paused); ``held`` says
        why a schedule does not fire although not paused (null when it fires)."""
        return ScheduleList(items=explain_holds(await list_schedules_async(db), config))

    @patch(
        "/{name:str}",
        summary="Change a schedule's interval or cron, pause or resume it",
        responses={
            400: problem_spec("The change is invalid; `field` names it"),
            404: problem_spec("No such schedule; `field` is `name`"),
        },
    )
    async def change(
        self,
        db: Db,
        config: NamedDependency[Config],
        name: ScheduleName,
        data: JSONBody[ScheduleChange],
    ) -> Schedule:
        """400 naming the field for a bad change; 404 naming ``name`` for an unknown schedule."""
        return await change_schedule(db, config, name, data)
