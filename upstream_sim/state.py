"""Everything the simulator serves and records, in one object the app and the tests share."""

from dataclasses import dataclass, field

from upstream_sim.affiliate_feed import AffiliateFeed
from upstream_sim.faults import FaultPlan
from upstream_sim.requests_log import RequestLog


@dataclass(frozen=True, slots=True)
class SimulatorState:
    """The simulated upstreams' state, one attribute per upstream plus the cross-cutting parts.

    Frozen so the app and a test always look at the same objects: tests change the state
    through the objects' own methods (``state.affiliate.reset(...)``), or over HTTP through
    the ``/_sim/`` control routes, never by swapping an attribute. New upstreams (CBHours,
    the site) get their own attribute next to ``affiliate``.

    Attributes:
        affiliate: The Affiliate online-rooms feed (empty unless given or reset).
        faults: The fault plan applied to every upstream route.
        requests: The log of answered upstream requests.
    """

    affiliate: AffiliateFeed = field(default_factory=AffiliateFeed)
    faults: FaultPlan = field(default_factory=FaultPlan)
    requests: RequestLog = field(default_factory=RequestLog)
