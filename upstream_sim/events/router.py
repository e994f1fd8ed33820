"""The simulated Events API as one router: the long poll and its controls."""

from litestar import Router

from upstream_sim.events.control import EventsControlController
from upstream_sim.events.routes import EventsController


def events_router() -> Router:
    """``/events/<username>/<token>/`` and ``/_sim/events`` (a new router per app)."""
    return Router(path="/", route_handlers=[EventsController, EventsControlController])
