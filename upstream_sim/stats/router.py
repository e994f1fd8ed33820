"""The simulated Stats API as one router: ``/statsapi/`` and its controls."""

from litestar import Router

from upstream_sim.stats.control import StatsControlController
from upstream_sim.stats.routes import StatsController


def stats_router() -> Router:
    """``/statsapi/`` and ``/_sim/stats`` (a new router per app)."""
    return Router(path="/", route_handlers=[StatsController, StatsControlController])
