"""Everything the simulator serves and records, in one object the app and the tests share."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.cbhours.data import CbhoursState
from upstream_sim.events.data import Event, EventsState
from upstream_sim.faults import FaultPlan
from upstream_sim.requests_log import RequestLog
from upstream_sim.site.state import SiteState
from upstream_sim.stats.data import StatsState


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
        events: The owner's Events API: a stream per site account, tokens, limits (empty).
        faults: The fault plan applied to every upstream route.
        requests: The log of answered upstream requests.
        site: The site's logged-in side: accounts, sessions, login switches.
        stats: The owner's Stats API: overrides, event-derived figures, tokens.

    The upstreams that describe one world are connected here, once: a change to a site
    account's followers list appends follow and unfollow events to its stream; follow and
    unfollow events appended by a test change the list back (silently, so nothing echoes);
    every appended event updates the Stats API's figures.
    """

    affiliate: AffiliateFeed = field(default_factory=AffiliateFeed)
    cbhours: CbhoursState = field(default_factory=CbhoursState)
    events: EventsState = field(default_factory=EventsState)
    faults: FaultPlan = field(default_factory=FaultPlan)
    requests: RequestLog = field(default_factory=RequestLog)
    site: SiteState = field(default_factory=SiteState)
    stats: StatsState = field(default_factory=StatsState)

    def __post_init__(self) -> None:
        """Connect the site, the Events API and the Stats API (see the class docstring)."""
        self.site.add_followers_listener(self.events.followers_changed)
        self.events.add_listener(self._events_appended)

    def _events_appended(self, username: str, events: Sequence[Event], from_site: bool) -> None:
        self.stats.observe(username, [(event.method, event.object) for event in events])
        changes = [
            (str(user.get("username")), event.method == "follow")
            for event in events
            if event.method in ("follow", "unfollow")
            and isinstance(user := event.object.get("user"), dict)
            and user.get("username")
        ]
        if changes and not from_site and self.site.has_account(username):
            self.site.apply_follower_events(username, changes)

    def followers_count(self, username: str) -> int:
        """How many followers the site lists for the account (0 for an unknown one)."""
        try:
            return len(self.site.follows(username).followers)
        except KeyError:
            return 0
