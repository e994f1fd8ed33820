"""Upstream simulator: real HTTP stand-ins for upstream sites, for tests, benchmarks and demos.

One subpackage per upstream, each with the same parts: ``routes.py`` (its HTTP face, the real
formats), its state and data (``affiliate/feed.py``, ``cbhours/data.py``, ``site/state.py``),
``control.py`` (its ``/_sim/<upstream>`` routes) and ``router.py`` (all of it as one Litestar
router). The upstreams:

* ``affiliate/``: the Affiliate online-rooms API, current and legacy (``legacy.py``).
* ``cbhours/``: the CBHours API with its rate limit (``limit.py``).
* ``events/``: the owner's Events API, a long poll per site account (``objects.py`` makes the
  events); its follow and unfollow events follow the site's followers list.
* ``stats/``: the owner's Stats API, its figures from the site and the Events API stream.
* ``site/``: the site's login side (``routes.py``, ``pages.py``), its follow lists
  (``list_routes.py``, ``list_pages.py``, ``follow_lists.py``) and its thumbnail host
  (``thumbnails.py``).

What they share stays here: ``app.py`` composes the routers, ``state.py`` holds one attribute
per upstream, ``server.py`` serves the app on loopback, ``control.py`` the shared ``/_sim/``
routes, ``faults.py`` and ``requests_log.py`` the two middlewares (``middleware.py`` their base),
``parameters.py`` the 400 for a bad query parameter, ``tokens.py`` the owner's API tokens
(a deterministic default per account), ``rooms.py`` and ``vocabulary.py`` the room generator
every upstream draws from. ``state.py`` also connects the upstreams of one world: the site's
followers list, the Events API stream and the Stats API figures.
"""

from upstream_sim.affiliate.feed import AffiliateFeed, FeedQuery, TickSummary
from upstream_sim.affiliate.legacy import LegacyRoom, encode_legacy_rooms
from upstream_sim.affiliate.routes import LEGACY_ONLINE_ROOMS_PATH, ONLINE_ROOMS_PATH
from upstream_sim.app import create_app
from upstream_sim.faults import FaultPlan, FaultRule
from upstream_sim.requests_log import RequestLog, RequestRecord
from upstream_sim.rooms import Room, RoomFactory, encode_room, generate_rooms
from upstream_sim.server import SimulatorServer, serve
from upstream_sim.state import SimulatorState

__all__ = [
    "LEGACY_ONLINE_ROOMS_PATH",
    "ONLINE_ROOMS_PATH",
    "AffiliateFeed",
    "FaultPlan",
    "FaultRule",
    "FeedQuery",
    "LegacyRoom",
    "RequestLog",
    "RequestRecord",
    "Room",
    "RoomFactory",
    "SimulatorServer",
    "SimulatorState",
    "TickSummary",
    "create_app",
    "encode_legacy_rooms",
    "encode_room",
    "generate_rooms",
    "serve",
]
