"""Control routes of the simulated Affiliate API under ``/_sim/affiliate``: reset, status, tick."""

import random
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from upstream_sim.affiliate.feed import TickSummary
from upstream_sim.control import CONTROL_PREFIX
from upstream_sim.state import SimulatorState

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


class AffiliateControlController(Controller):
    """The ``/_sim/affiliate`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = CONTROL_PREFIX + "affiliate"

    @get()
    async def affiliate(self, sim: NamedDependency[SimulatorState]) -> AffiliateStatus:
        """How many rooms are online, and the feed's settings."""
        return _affiliate_status(sim)

    # Generating tens of thousands of rooms takes a while: keep it off the event loop.
    @post(status_code=200, sync_to_thread=True)
    def reset_affiliate(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[AffiliateReset]
    ) -> AffiliateStatus:
        """Regenerate the feed with ``count`` rooms from ``seed``."""
        sim.affiliate.reset(data.count, data.seed, move_between_pages=data.move_between_pages)
        return _affiliate_status(sim)

    @post("/tick", status_code=200, sync_to_thread=True)
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
