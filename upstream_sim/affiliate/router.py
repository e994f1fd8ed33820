"""The simulated Affiliate API as one router: its two endpoints, its controls and its 400s."""

from litestar import Router
from litestar.di import NamedDependency, Provide

from upstream_sim.affiliate.control import AffiliateControlController
from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.affiliate.routes import AffiliateController, parameter_error_response
from upstream_sim.parameters import ParameterError
from upstream_sim.state import SimulatorState


def affiliate_router() -> Router:
    """The Affiliate routes and ``/_sim/affiliate``, with the ``feed`` they read.

    A new router per app: the app factory runs once per test server.
    """
    return Router(
        path="/",
        route_handlers=[AffiliateController, AffiliateControlController],
        dependencies={"feed": Provide(_feed, sync_to_thread=False)},
        exception_handlers={ParameterError: parameter_error_response},
    )


def _feed(sim: NamedDependency[SimulatorState]) -> AffiliateFeed:
    return sim.affiliate
