"""Control routes of the simulated site: ``/_sim/site``.

They register accounts, set the switches, expire sessions, generate an account's follow
lists (``/_sim/site/follows``) and add or remove followers one by one
(``/_sim/site/follows/{username}/followers``, which the Events API turns into events), for a
process that cannot reach the :class:`~upstream_sim.site.state.SiteState` itself.
"""

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from upstream_sim.site.follow_lists import FollowLists
from upstream_sim.site.state import ExpiryMode, FailMode, ListName, SiteState, SiteSwitches
from upstream_sim.state import SimulatorState

SITE_CONTROL_PATH = "/_sim/site"


class AccountBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/accounts``."""

    username: Annotated[str, msgspec.Meta(min_length=1)]
    password: Annotated[str, msgspec.Meta(min_length=1)]
    followed_online: Annotated[int, msgspec.Meta(ge=0)] = 0
    followed_total: Annotated[int, msgspec.Meta(ge=0)] = 0


class SwitchesUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/switches``: only the switches given change."""

    captcha_required: bool | None = None
    two_factor_required: bool | None = None
    interstitial: bool | None = None
    interstitial_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] | None = None
    age_gate: bool | None = None
    expiry_mode: ExpiryMode | None = None
    page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None
    followers_page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None
    fail_list: ListName | None = None
    fail_page: Annotated[int, msgspec.Meta(ge=0)] | None = None
    fail_mode: FailMode | None = None
    expire_at_list_call: Annotated[int, msgspec.Meta(ge=0)] | None = None
    server_rendered: bool | None = None


class ExpireBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/sessions/expire``; neither field expires every session."""

    username: str | None = None
    sessionid: str | None = None


class ExpiredView(msgspec.Struct, frozen=True, kw_only=True):
    """How many sessions an expire request ended."""

    expired: int


class SiteView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /_sim/site`` shows (no passwords, no session values)."""

    switches: SiteSwitches
    accounts: list[str]
    sessions: int


class SiteControlController(Controller):
    """The ``/_sim/site`` control routes."""

    path = SITE_CONTROL_PATH

    @get("/")
    async def view(self, sim: NamedDependency[SimulatorState]) -> SiteView:
        """Switches, account names and how many sessions were issued."""
        return _site_view(sim.site)

    @delete("/")
    async def reset(self, sim: NamedDependency[SimulatorState]) -> None:
        """Forget accounts and sessions, every switch off."""
        sim.site.reset()

    @post("/accounts", status_code=201)
    async def add_account(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[AccountBody]
    ) -> SiteView:
        """Register (or replace) an account."""
        sim.site.add_account(
            data.username,
            data.password,
            followed_online=data.followed_online,
            followed_total=data.followed_total,
        )
        return _site_view(sim.site)

    @post("/switches", status_code=200)
    async def set_switches(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[SwitchesUpdate]
    ) -> SiteSwitches:
        """Change the given switches, keep the others."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        switches = msgspec.structs.replace(sim.site.switches, **changes)
        sim.site.set_switches(switches)
        return switches

    @post("/sessions/expire", status_code=200)
    async def expire(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[ExpireBody]
    ) -> ExpiredView:
        """Expire one session, an account's sessions, or all of them."""
        count = sim.site.expire_sessions(username=data.username, sessionid=data.sessionid)
        return ExpiredView(expired=count)


def _site_view(site: SiteState) -> SiteView:
    return SiteView(
        switches=site.switches, accounts=site.accounts(), sessions=len(site.session_ids())
    )


class FollowsBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/follows``: generate an account's lists."""

    username: str
    online: Annotated[int, msgspec.Meta(ge=0, le=20_000)] = 0
    offline: Annotated[int, msgspec.Meta(ge=0, le=20_000)] = 0
    followers: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0
    seed: int = 0


class FollowsView(msgspec.Struct, frozen=True, kw_only=True):
    """An account's list sizes."""

    username: str
    online: int
    offline: int
    followers: int


class FollowersChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/site/follows/{username}/followers``: who follows, who unfollows."""

    add: list[Annotated[str, msgspec.Meta(min_length=1)]] = []
    remove: list[Annotated[str, msgspec.Meta(min_length=1)]] = []


class FollowListsControlController(Controller):
    """``/_sim/site/follows``: set and read an account's generated lists."""

    path = "/_sim/site/follows"

    @post(status_code=200, sync_to_thread=True)
    def generate(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[FollowsBody]
    ) -> FollowsView:
        """Replace the account's lists with generated ones (404 for an unknown account)."""
        lists = FollowLists.generate(
            online=data.online, offline=data.offline, followers=data.followers, seed=data.seed
        )
        try:
            sim.site.set_follows(data.username, lists)
        except KeyError:
            raise NotFoundException(f"no account {data.username!r}") from None
        return _view(data.username, lists)

    @post("/{username:str}/followers", status_code=200)
    async def change_followers(
        self,
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        data: JSONBody[FollowersChange],
    ) -> FollowsView:
        """New followers (newest last), then lost ones; the Events API hears of both."""
        try:
            sim.site.add_followers(username, data.add)
            sim.site.remove_followers(username, data.remove)
            return _view(username, sim.site.follows(username))
        except KeyError:
            raise NotFoundException(f"no account {username!r}") from None

    @get("/{username:str}")
    async def view(
        self, sim: NamedDependency[SimulatorState], username: FromPath[str]
    ) -> FollowsView:
        """The account's list sizes."""
        try:
            return _view(username, sim.site.follows(username))
        except KeyError:
            raise NotFoundException(f"no account {username!r}") from None


def _view(username: str, lists: FollowLists) -> FollowsView:
    return FollowsView(
        username=username,
        online=len(lists.online),
        offline=len(lists.offline),
        followers=len(lists.followers),
    )
