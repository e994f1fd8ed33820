"""Application factory: one Litestar app serving every simulated upstream from one state."""

from litestar import Litestar
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware

from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.affiliate.routes import (
    AffiliateController,
    ParameterError,
    parameter_error_response,
)
from upstream_sim.cbhours.routes import CbhoursController
from upstream_sim.control import CONTROL_PREFIX, CbhoursControlController, ControlController
from upstream_sim.faults import FaultMiddleware
from upstream_sim.requests_log import RequestLogMiddleware
from upstream_sim.site.list_routes import FollowListsControlController, FollowListsController
from upstream_sim.site.routes import SiteControlController, SiteController
from upstream_sim.site.thumbnails import ThumbnailController
from upstream_sim.state import SimulatorState


def create_app(state: SimulatorState) -> Litestar:
    """Build the simulator app around ``state``.

    The request log wraps the fault middleware, so faulted answers are logged with the
    status the client saw; both skip the ``/_sim/`` control routes.

    Args:
        state: What to serve and where to record; the caller keeps it to steer the run.
    """

    def provide_state() -> SimulatorState:
        return state

    def provide_feed() -> AffiliateFeed:
        return state.affiliate

    return Litestar(
        route_handlers=[
            AffiliateController,
            CbhoursController,
            ControlController,
            CbhoursControlController,
            SiteController,
            SiteControlController,
            FollowListsController,
            FollowListsControlController,
            ThumbnailController,
        ],
        dependencies={
            "sim": Provide(provide_state, sync_to_thread=False),
            "feed": Provide(provide_feed, sync_to_thread=False),
        },
        middleware=[
            DefineMiddleware(
                RequestLogMiddleware, log=state.requests, exclude_prefix=CONTROL_PREFIX
            ),
            DefineMiddleware(FaultMiddleware, plan=state.faults, exclude_prefix=CONTROL_PREFIX),
        ],
        exception_handlers={ParameterError: parameter_error_response},
        # The real upstreams serve no /schema, so neither does their stand-in.
        openapi_config=None,
        # The simulator runs inside test and benchmark processes: leave their root logger alone.
        logging_config=LoggingConfig(configure_root_logger=False),
    )
