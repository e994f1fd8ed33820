"""Everything the simulator serves and records, in one object the app and the tests share."""

from dataclasses import dataclass, field

from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.cbhours.data import CbhoursState
from upstream_sim.faults import FaultPlan
from upstream_sim.requests_log import RequestLog
from upstream_sim.site.state import SiteState


@dataclass(frozen=True, slots=True)
class SimulatorState:
    """The simulated upstreams' state, one attribute per upstream plus the cross-cutting parts.

    Frozen so the app and a test always look at the same objects: tests change the state
    through the objects' own methods (``state.affiliate.reset(...)``), or over HTTP through
    the ``/_sim/`` control routes, never by swapping an attribute. A new upstream gets its
    own attribute here, holding the state object of its subpackage.

    Attributes:
        affiliate: The Affiliate online-rooms feed (empty unless given or reset).
        cbhours: The CBHours API: trophy set, live rows, activity, rate limit (empty).
        faults: The fault plan applied to every upstream route.
        requests: The log of answered upstream requests.
        site: The site's logged-in side: accounts, sessions, login switches.
    """

    affiliate: AffiliateFeed = field(default_factory=AffiliateFeed)
    cbhours: CbhoursState = field(default_factory=CbhoursState)
    faults: FaultPlan = field(default_factory=FaultPlan)
    requests: RequestLog = field(default_factory=RequestLog)
    site: SiteState = field(default_factory=SiteState)
