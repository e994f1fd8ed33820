"""The simulated CBHours API as one router: ``/api.php`` and its controls."""

from litestar import Router

from upstream_sim.cbhours.control import CbhoursControlController
from upstream_sim.cbhours.routes import CbhoursController


def cbhours_router() -> Router:
    """The CBHours route and ``/_sim/cbhours`` (a new router per app)."""
    return Router(path="/", route_handlers=[CbhoursController, CbhoursControlController])
