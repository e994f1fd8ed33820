"""HTTP face of the simulated Stats API: ``GET /statsapi/?username=&token=`` (FORMATS.md §6.2).

The answer is the documented object, keys in the documented order (``data.py`` says where each
figure comes from). Where the docs are silent the simulator decides: a missing ``username``
answers 400, a username that is not a site account 404, a token the account does not accept
401 (checked in that order), each as JSON ``{"status": N, "detail": "..."}``. The Stats API has
no documented rate limit, so the simulator sets none; the fault plan and the request log apply
as to every upstream (the logged query holds the token, as the real URL does).
"""

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType

from upstream_sim.state import SimulatorState

STATS_PATH = "/statsapi/"


class StatsController(Controller):
    """The one Stats API route. Needs a ``sim`` dependency (see ``app.create_app``)."""

    @get(STATS_PATH)
    async def stats(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[bytes]:
        """The account's figures, or a refusal; see the module docstring."""
        username = request.query_params.get("username", "")
        token = request.query_params.get("token", "")
        if not username:
            return _refusal(400, "username is required")
        if not sim.site.has_account(username):
            return _refusal(404, f"no such broadcaster: {username}")
        if not sim.stats.tokens.accepts(username, token):
            return _refusal(401, "invalid or revoked token")
        document = sim.stats.document(username, num_followers=sim.followers_count(username))
        return Response(msgspec.json.encode(document), media_type=MediaType.JSON)


def _refusal(status: int, detail: str) -> Response[bytes]:
    body = msgspec.json.encode({"status": status, "detail": detail})
    return Response(body, status_code=status, media_type=MediaType.JSON)
