"""Application factory: one Litestar app serving every simulated upstream from one state."""

from litestar import Litestar
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.middleware import DefineMiddleware

from upstream_sim.affiliate.router import affiliate_router
from upstream_sim.cbhours.router import cbhours_router
from upstream_sim.control import CONTROL_PREFIX, ControlController
from upstream_sim.events.router import events_router
from upstream_sim.faults import FaultMiddleware
from upstream_sim.requests_log import RequestLogMiddleware
from upstream_sim.site.router import site_router
from upstream_sim.state import SimulatorState
from upstream_sim.stats.router import stats_router


def create_app(state: SimulatorState) -> Litestar:
    """Build the simulator app around ``state``.

    The request log wraps the fault middleware, so faulted answers are logged with the
    status the client saw; both skip the ``/_sim/`` control routes.

    Args:
        state: What to serve and where to record; the caller keeps it to steer the run.
    """

    def provide_state() -> SimulatorState:
        return state

    return Litestar(
        # One router per upstream (its routes and its ``/_sim/<upstream>`` controls), plus
        # the controls every upstream shares: the request log and the faults.
        route_handlers=[
            ControlController,
            affiliate_router(),
            cbhours_router(),
            events_router(),
            site_router(),
            stats_router(),
        ],
        dependencies={"sim": Provide(provide_state, sync_to_thread=False)},
        middleware=[
            DefineMiddleware(
                RequestLogMiddleware, log=state.requests, exclude_prefix=CONTROL_PREFIX
            ),
            DefineMiddleware(FaultMiddleware, plan=state.faults, exclude_prefix=CONTROL_PREFIX),
        ],
        # The real upstreams serve no /schema, so neither does their stand-in.
        openapi_config=None,
        # The simulator runs inside test and benchmark processes: leave their root logger alone.
        logging_config=LoggingConfig(configure_root_logger=False),
    )
