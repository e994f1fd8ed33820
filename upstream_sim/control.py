"""Control routes under ``/_sim/``: the request log, faults, the Affiliate feed and CBHours.

Tests running in the same process can call the state objects directly; these routes exist for
everything else (a benchmark or demo driving a ``roomwatch simulate`` process, or a crawl
subprocess under test). They are never logged or faulted themselves.
"""

import random
from datetime import date
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromQuery, JSONBody

from upstream_sim.affiliate.feed import TickSummary
from upstream_sim.cbhours.data import CbhoursStats, LiveStatus
from upstream_sim.cbhours.limit import RateLimitView
from upstream_sim.faults import FaultRule, FaultState
from upstream_sim.requests_log import RequestRecord
from upstream_sim.state import SimulatorState

CONTROL_PREFIX = "/_sim/"
MAX_ROOMS = 200_000


class AffiliateReset(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/affiliate``: regenerate the feed."""

    count: Annotated[int, msgspec.Meta(ge=0, le=MAX_ROOMS)] = 1000
    seed: int = 0
    move_between_pages: Annotated[int, msgspec.Meta(ge=0)] = 0


class AffiliateStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the feed holds now."""

    online: int
    seed: int
    move_between_pages: int


class TickRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/affiliate/tick`` (optional; the defaults make one minute pass)."""

    seconds: Annotated[int, msgspec.Meta(ge=0)] = 60
    churn: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.02
    seed: int | None = None
    """Seed for this step; the feed's own seeded generator when absent."""


class FaultPlanBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/faults``: the new plan, replacing the old one."""

    rules: list[FaultRule]


class FaultPlanView(msgspec.Struct, frozen=True, kw_only=True):
    """The plan with the shots each rule has left."""

    rules: list[FaultState]


class RequestsView(msgspec.Struct, frozen=True, kw_only=True):
    """Logged requests, oldest response first."""

    count: int
    requests: list[RequestRecord]


class ControlController(Controller):
    """The ``/_sim/`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = CONTROL_PREFIX.rstrip("/")

    @get("/requests")
    async def requests(
        self, sim: NamedDependency[SimulatorState], prefix: FromQuery[str] = ""
    ) -> RequestsView:
        """The request log, optionally only paths starting with ``prefix``."""
        entries = sim.requests.entries(prefix)
        return RequestsView(count=len(entries), requests=entries)

    @delete("/requests")
    async def clear_requests(self, sim: NamedDependency[SimulatorState]) -> None:
        """Empty the request log."""
        sim.requests.clear()

    @get("/faults")
    async def faults(self, sim: NamedDependency[SimulatorState]) -> FaultPlanView:
        """The current fault plan."""
        return FaultPlanView(rules=sim.faults.state())

    @post("/faults", status_code=200)
    async def set_faults(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[FaultPlanBody]
    ) -> FaultPlanView:
        """Replace the fault plan."""
        sim.faults.set(data.rules)
        return FaultPlanView(rules=sim.faults.state())

    @delete("/faults")
    async def clear_faults(self, sim: NamedDependency[SimulatorState]) -> None:
        """Remove every fault rule."""
        sim.faults.clear()

    @get("/affiliate")
    async def affiliate(self, sim: NamedDependency[SimulatorState]) -> AffiliateStatus:
        """How many rooms are online, and the feed's settings."""
        return _affiliate_status(sim)

    # Generating tens of thousands of rooms takes a while: keep it off the event loop.
    @post("/affiliate", status_code=200, sync_to_thread=True)
    def reset_affiliate(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[AffiliateReset]
    ) -> AffiliateStatus:
        """Regenerate the feed with ``count`` rooms from ``seed``."""
        sim.affiliate.reset(data.count, data.seed, move_between_pages=data.move_between_pages)
        return _affiliate_status(sim)

    @post("/affiliate/tick", status_code=200, sync_to_thread=True)
    def tick_affiliate(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[TickRequest | None] = None
    ) -> TickSummary:
        """Advance the feed by one churn step."""
        body = data or TickRequest()
        rng = None if body.seed is None else random.Random(body.seed)
        return sim.affiliate.tick(rng, seconds=body.seconds, churn=body.churn)


def _affiliate_status(sim: SimulatorState) -> AffiliateStatus:
    feed = sim.affiliate
    return AffiliateStatus(
        online=len(feed), seed=feed.seed, move_between_pages=feed.move_between_pages
    )


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
