"""HTTP face of the simulated Events API: ``GET /events/<username>/<token>/`` (FORMATS.md §6.1).

The answer is ``{"events": [...], "nextUrl": ".../events/<username>/<token>/?i=<id>&timeout=<t>"}``
with the events after id ``i``, at most ``max_events_per_response`` of them (a burst is read
over several requests). ``nextUrl`` is absolute, on the address the client asked (its Host
header), and always carries ``i`` and ``timeout``. Where the docs are silent the simulator
decides:

* **Without ``i``** the answer starts at the oldest event of the stream (the real API starts
  about "now"), so a client's first request reads what a test queued before it; nothing is
  ever dropped. The position before the first event is ``i=0-0``, which is where ``nextUrl``
  points when nothing has been read yet.
* **Long poll**: with no event after ``i`` the request is held until one is appended or
  ``timeout`` seconds pass (default 10, clamped to 0-90; a decimal like ``0.5`` is accepted so
  tests stay quick), then answers ``{"events": [], ...}`` with the same ``i``.
* **Refusals** answer JSON ``{"status": N, "detail": "..."}``: 404 for a username that is not a
  site account, 401 for a token the account does not accept (checked in that order), 429 with
  ``Retry-After`` past ``max_requests_per_minute`` requests in the last 60 s for the account
  (default 2,000, the ``cb-events`` client's limiter), 400 for a malformed ``i`` or ``timeout``.
  Refused requests do not count against the limit.

The fault plan and the request log apply as to every upstream route; the logged path holds the
token, as the real URL does (the simulator's log is a test double's, nothing prints it).
"""

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import FromPath

from upstream_sim.events.data import EventKey, parse_event_id
from upstream_sim.state import SimulatorState

EVENTS_PATH = "/events/"
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 90.0
START_ID = "0-0"


class _Refused(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


class EventsController(Controller):
    """The one Events API route. Needs a ``sim`` dependency (see ``app.create_app``)."""

    @get(EVENTS_PATH + "{username:str}/{token:str}")
    async def events(
        self,
        request: Request[Any, Any, Any],
        sim: NamedDependency[SimulatorState],
        username: FromPath[str],
        token: FromPath[str],
    ) -> Response[bytes]:
        """Answer one long poll; see the module docstring."""
        try:
            position, timeout = _check(request, sim, username, token)
        except _Refused as refused:
            body = {"status": refused.status, "detail": refused.detail}
            return _json(msgspec.json.encode(body), refused.status, refused.headers)
        stream = sim.events
        limit = stream.settings.max_events_per_response
        batch, last = stream.after(username, position, limit)
        if not batch and timeout > 0:
            wake = asyncio.Event()
            with stream.waiting(username, wake):
                # Read again once registered: an event appended in between would not wake us.
                batch, last = stream.after(username, position, limit)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout)
                    batch, last = stream.after(username, position, limit)
        if last is None:
            last = request.query_params.get("i") or START_ID
        next_url = (
            f"{str(request.base_url).rstrip('/')}{EVENTS_PATH}{quote(username)}/{quote(token)}/"
            f"?i={quote(last)}&timeout={timeout:g}"
        )
        return _json(msgspec.json.encode({"events": batch, "nextUrl": next_url}), 200, None)


def _check(
    request: Request[Any, Any, Any], sim: SimulatorState, username: str, token: str
) -> tuple[EventKey | None, float]:
    """The position and timeout of an admitted request.

    Raises:
        _Refused: 404, 401, 429 or 400, in the order the module docstring gives.
    """
    if not sim.site.has_account(username):
        raise _Refused(404, f"no such broadcaster: {username}")
    if not sim.events.tokens.accepts(username, token):
        raise _Refused(401, "invalid or revoked token")
    raw_i = request.query_params.get("i")
    try:
        position = parse_event_id(raw_i) if raw_i else None
    except ValueError as exc:
        raise _Refused(400, str(exc)) from None
    raw_timeout = request.query_params.get("timeout")
    try:
        timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT
    except ValueError:
        raise _Refused(400, f"timeout is not a number: {raw_timeout!r}") from None
    if timeout != timeout:  # NaN
        raise _Refused(400, "timeout is not a number")
    retry_after = sim.events.admit(username)
    if retry_after is not None:
        raise _Refused(429, "too many requests", {"Retry-After": str(retry_after)})
    return position, min(MAX_TIMEOUT, max(0.0, timeout))


def _json(body: bytes, status: int, headers: dict[str, str] | None) -> Response[bytes]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)
