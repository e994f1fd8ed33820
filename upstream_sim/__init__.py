"""Upstream simulator: real HTTP stand-ins for upstream sites, for tests, benchmarks and demos."""

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
