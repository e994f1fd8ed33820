"""The simulated site as one router: login side, follow lists, thumbnails and their controls."""

from litestar import Router

from upstream_sim.site.control import FollowListsControlController, SiteControlController
from upstream_sim.site.list_routes import FollowListsController
from upstream_sim.site.routes import SiteController
from upstream_sim.site.thumbnails import ThumbnailController


def site_router() -> Router:
    """The site's pages, its thumbnail host, ``/_sim/site`` (a new router per app)."""
    return Router(
        path="/",
        route_handlers=[
            SiteController,
            SiteControlController,
            FollowListsController,
            FollowListsControlController,
            ThumbnailController,
        ],
    )
