"""Control routes under ``/_sim/``: read the request log, set faults, reset and churn the feed.

Tests running in the same process can call the state objects directly; these routes exist for
everything else (a benchmark or demo driving a ``roomwatch simulate`` process, or a crawl
subprocess under test). They are never logged or faulted themselves.
"""

import random
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from upstream_sim.affiliate_feed import TickSummary
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
