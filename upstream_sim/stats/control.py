"""Control routes of the simulated Stats API: ``/_sim/stats``.

* ``GET /_sim/stats/{username}``: the answer the API would give now, without a token.
* ``PUT /_sim/stats/{username}``: override any subset of the fields (``num_followers``
  included, to make the count stale or wrong); ``null`` gives a field back to its figure.
* ``PUT /_sim/stats/{username}/token``: the tokens the account accepts (``[]`` revokes them).
* ``DELETE /_sim/stats``: forget every override, figure and token.
"""

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from upstream_sim.control import CONTROL_PREFIX
from upstream_sim.state import SimulatorState
from upstream_sim.stats.data import StatsDocument

STATS_CONTROL_PATH = CONTROL_PREFIX + "stats"
_Unset = msgspec.UnsetType


class StatsOverride(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PUT /_sim/stats/{username}``: absent fields stay, ``null`` ones are cleared."""

    token_balance: int | _Unset | None = msgspec.UNSET
    tips_in_last_hour: int | _Unset | None = msgspec.UNSET
    votes_up: int | _Unset | None = msgspec.UNSET
    votes_down: int | _Unset | None = msgspec.UNSET
    satisfaction_score: int | _Unset | None = msgspec.UNSET
    last_broadcast: str | int | _Unset | None = msgspec.UNSET
    time_online: int | _Unset | None = msgspec.UNSET
    num_followers: int | _Unset | None = msgspec.UNSET
    num_viewers: int | _Unset | None = msgspec.UNSET
    num_registered_viewers: int | _Unset | None = msgspec.UNSET
    num_tokened_viewers: int | _Unset | None = msgspec.UNSET


class StatsTokens(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PUT /_sim/stats/{username}/token``."""

    tokens: list[Annotated[str, msgspec.Meta(min_length=1)]]


class StatsControlController(Controller):
    """The ``/_sim/stats`` routes. Needs a ``sim`` dependency (see ``app.create_app``)."""

    path = STATS_CONTROL_PATH

    @delete()
    async def reset(self, sim: NamedDependency[SimulatorState]) -> None:
        """Forget every override, event-derived figure and token."""
        sim.stats.reset()

    @get("/{username:str}")
    async def view(
        self, sim: NamedDependency[SimulatorState], username: FromPath[str]
    ) -> StatsDocument:
        """The answer the Stats API gives now."""
        _known(sim, username)
        return sim.stats.document(username, num_followers=sim.followers_count(username))

    @put("/{username:str}")
    async def override(
        self,
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        data: JSONBody[StatsOverride],
    ) -> StatsDocument:
        """Override the given fields (``null`` clears an override) and show the answer."""
        _known(sim, username)
        given = {
            name: getattr(data, name)
            for name in data.__struct_fields__
            if getattr(data, name) is not msgspec.UNSET
        }
        sim.stats.override(username, **given)
        return sim.stats.document(username, num_followers=sim.followers_count(username))

    @put("/{username:str}/token")
    async def set_tokens(
        self,
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        data: JSONBody[StatsTokens],
    ) -> StatsTokens:
        """Replace the tokens the account accepts."""
        _known(sim, username)
        sim.stats.tokens.set(username, data.tokens)
        return StatsTokens(tokens=list(sim.stats.tokens.tokens(username)))


def _known(sim: SimulatorState, username: str) -> None:
    if not sim.site.has_account(username):
        raise NotFoundException(f"no site account {username!r}")
