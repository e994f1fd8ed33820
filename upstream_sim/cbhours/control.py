"""Control routes of the simulated CBHours API: ``/_sim/cbhours``.

They set the trophy database, the ``get_live`` rows, the activity history and the rate limit,
for a process that cannot reach the :class:`~upstream_sim.cbhours.data.CbhoursState` itself.
"""

from datetime import date
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import JSONBody

from upstream_sim.cbhours.data import CbhoursStats, LiveStatus
from upstream_sim.cbhours.limit import RateLimitView
from upstream_sim.control import CONTROL_PREFIX
from upstream_sim.state import SimulatorState


class CbhoursReset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/cbhours``: forget every model and the limiter's counters."""

    seed: int = 0
    trophy: list[str] = []


class TrophyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/cbhours/trophy``: replace the set, or add or remove names."""

    usernames: list[str]
    mode: Literal["replace", "add", "remove"] = "replace"


class LiveBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/cbhours/live``: rows in the ``get_live`` wire shape, by name.

    ``random_online`` names get a generated Online row (``CbhoursState.random_online``).
    """

    live: dict[str, LiveStatus] = {}
    random_online: list[str] = []


class ActivityBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/cbhours/activity``: generate history for UTC days (inclusive)."""

    username: str
    start_date: date
    end_date: date
    gender: Literal["f", "m", "t", "c"] | None = None
    online_chance: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.7


class ActivitySeeded(msgspec.Struct, frozen=True, kw_only=True):
    """What seeding made: segments in the range, and the model's months now."""

    username: str
    segments: int
    months: list[str]


class RateLimitBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/cbhours/rate_limit``; absent settings stay as they are."""

    enabled: bool | None = None
    interval: Annotated[float, msgspec.Meta(ge=0)] | None = None
    tolerance: Annotated[float, msgspec.Meta(ge=0)] | None = None
    reset_counters: bool = False


class CbhoursControlController(Controller):
    """The ``/_sim/cbhours`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = CONTROL_PREFIX + "cbhours"

    @get()
    async def cbhours(self, sim: NamedDependency[SimulatorState]) -> CbhoursStats:
        """Trophy set, Online names, segments per model, limiter settings and counters."""
        return sim.cbhours.stats()

    @post(status_code=200)
    async def reset_cbhours(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[CbhoursReset]
    ) -> CbhoursStats:
        """Start over with ``seed`` and only the ``trophy`` names (limiter settings kept)."""
        sim.cbhours.reset(data.seed, trophy=data.trophy)
        return sim.cbhours.stats()

    @post("/trophy", status_code=200)
    async def set_trophy(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[TrophyBody]
    ) -> CbhoursStats:
        """Change the trophy database."""
        if data.mode == "replace":
            sim.cbhours.remove_trophy(*sim.cbhours.trophy)
        if data.mode == "remove":
            sim.cbhours.remove_trophy(*data.usernames)
        else:
            sim.cbhours.add_trophy(*data.usernames)
        return sim.cbhours.stats()

    @post("/live", status_code=200)
    async def set_live(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[LiveBody]
    ) -> CbhoursStats:
        """Set models' ``get_live`` rows (Online or Offline)."""
        for username, status in data.live.items():
            sim.cbhours.set_live(username, status)
        for username in data.random_online:
            sim.cbhours.set_live(username, sim.cbhours.random_online(username))
        return sim.cbhours.stats()

    # Sixty days of 3-minute segments take a moment to generate: keep it off the event loop.
    @post("/activity", status_code=200, sync_to_thread=True)
    def seed_activity(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[ActivityBody]
    ) -> ActivitySeeded:
        """Generate the model's history on the given UTC days, replacing what was there."""
        try:
            made = sim.cbhours.seed_activity(
                data.username,
                data.start_date,
                data.end_date,
                gender=data.gender,
                online_chance=data.online_chance,
            )
        except ValueError as exc:
            raise ValidationException(str(exc)) from exc
        months = sim.cbhours.months(data.username)
        return ActivitySeeded(username=data.username.lower(), segments=made, months=months)

    @post("/rate_limit", status_code=200)
    async def set_rate_limit(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[RateLimitBody]
    ) -> RateLimitView:
        """Switch the 1 request/second limit on or off, change its interval, zero its counters."""
        limit = sim.cbhours.rate_limit
        limit.configure(enabled=data.enabled, interval=data.interval, tolerance=data.tolerance)
        if data.reset_counters:
            limit.reset()
        return limit.view()
