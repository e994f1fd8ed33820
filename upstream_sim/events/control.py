"""Control routes of the simulated Events API: ``/_sim/events``.

* ``GET /_sim/events``: the limits and the events per account.
* ``PUT /_sim/events``: change limits (``max_events_per_response``,
  ``max_requests_per_minute``); ``DELETE /_sim/events``: forget every stream and token.
* ``POST /_sim/events/{username}``: append events to the account's stream: explicit ones
  (``{"events": [{"method": "tip", "object": {"tip": {"tokens": 50}}}]}``, missing parts made
  up), a generated ``burst`` (``{"burst": 10000, "methods": ["tip", "userEnter"], "seed": 3}``;
  the busy-room mix without ``methods``) or a ``broadcast`` start or stop; in that order when a
  body has several. 404 for an account the site does not have.
* ``GET /_sim/events/{username}``: every event appended, oldest first.
* ``PUT /_sim/events/{username}/token``: the tokens the account accepts (``{"tokens": []}``
  revokes them all); ``GET`` shows them.
"""

from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from upstream_sim.control import CONTROL_PREFIX
from upstream_sim.events.data import Event, EventSpec, EventsSettings
from upstream_sim.state import SimulatorState

EVENTS_CONTROL_PATH = CONTROL_PREFIX + "events"


class SettingsUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PUT /_sim/events``: only the limits given change."""

    max_events_per_response: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    max_requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None


class EventsOverview(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /_sim/events`` shows."""

    settings: EventsSettings
    accounts: dict[str, int]


class AppendBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /_sim/events/{username}``."""

    events: list[EventSpec] = []
    burst: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    methods: list[str] = []
    seed: int = 0
    broadcast: Literal["start", "stop"] | None = None


class Appended(msgspec.Struct, frozen=True, kw_only=True):
    """What an append made: how many events and the ids of the first and last."""

    appended: int
    first_id: str | None
    last_id: str | None
    total: int


class StreamView(msgspec.Struct, frozen=True, kw_only=True):
    """Every event of one account's stream."""

    username: str
    count: int
    events: list[Event]


class TokensBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PUT /_sim/events/{username}/token``: the tokens the account accepts."""

    tokens: list[Annotated[str, msgspec.Meta(min_length=1)]]


class EventsControlController(Controller):
    """The ``/_sim/events`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = EVENTS_CONTROL_PATH

    @get()
    async def overview(self, sim: NamedDependency[SimulatorState]) -> EventsOverview:
        """Limits and events per account."""
        return EventsOverview(settings=sim.events.settings, accounts=sim.events.accounts())

    @put()
    async def configure(
        self, sim: NamedDependency[SimulatorState], data: JSONBody[SettingsUpdate]
    ) -> EventsSettings:
        """Change the given limits, keep the others."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        settings = msgspec.structs.replace(sim.events.settings, **changes)
        sim.events.configure(settings)
        return settings

    @delete()
    async def reset(self, sim: NamedDependency[SimulatorState]) -> None:
        """Forget every stream, request count and token."""
        sim.events.reset()

    # A burst of many thousand events takes a moment: keep it off the event loop.
    @post("/{username:str}", status_code=200, sync_to_thread=True)
    def append(
        self,
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        data: JSONBody[AppendBody],
    ) -> Appended:
        """Append explicit, generated and broadcast events, in that order."""
        _known(sim, username)
        made: list[Event] = []
        if data.events:
            made += sim.events.append(username, data.events)
        if data.burst:
            made += sim.events.burst(username, data.burst, methods=data.methods, seed=data.seed)
        if data.broadcast == "start":
            made.append(sim.events.broadcast_start(username))
        elif data.broadcast == "stop":
            made.append(sim.events.broadcast_stop(username))
        return Appended(
            appended=len(made),
            first_id=made[0].id if made else None,
            last_id=made[-1].id if made else None,
            total=len(sim.events.events(username)),
        )

    @get("/{username:str}", sync_to_thread=True)
    def stream(self, sim: NamedDependency[SimulatorState], username: FromPath[str]) -> StreamView:
        """Every event appended to the account's stream, oldest first."""
        _known(sim, username)
        events = sim.events.events(username)
        return StreamView(username=username.lower(), count=len(events), events=events)

    @put("/{username:str}/token")
    async def set_tokens(
        self,
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        data: JSONBody[TokensBody],
    ) -> TokensBody:
        """Replace the tokens the account accepts."""
        _known(sim, username)
        sim.events.tokens.set(username, data.tokens)
        return TokensBody(tokens=list(sim.events.tokens.tokens(username)))

    @get("/{username:str}/token")
    async def tokens(
        self, sim: NamedDependency[SimulatorState], username: FromPath[str]
    ) -> TokensBody:
        """The tokens the account accepts now."""
        _known(sim, username)
        return TokensBody(tokens=list(sim.events.tokens.tokens(username)))


def _known(sim: SimulatorState, username: str) -> None:
    if not sim.site.has_account(username):
        raise NotFoundException(f"no site account {username!r}")
