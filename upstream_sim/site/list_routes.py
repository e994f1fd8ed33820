"""HTTP face of the simulated site's follow lists: followed cams, the room-list API, followers.

Routes (FORMATS.md §3.3-3.6, §3.9):

* ``GET /followed-cams/`` (also ``/followed-cams/online/``, where the header links) and
  ``GET /followed-cams/offline/``: the JS pages of ``list_pages``; ``?page=N``.
* ``GET /api/ts/roomlist/room-list/``: without ``X-Requested-With: XMLHttpRequest`` a 302 to
  ``/`` (the site since 2026-07). ``follow=true`` with a live session: the account's online or
  offline list (``offline=true|false``), ``limit``/``offset`` paged; anything else, an expired
  session included, gets the anonymous public list (``is_following`` false, ``total_count``
  8045), exactly as the real site answers.
* ``GET /accounts/followers/``: server-rendered, ``?page=N`` (markup a guess, or the table
  markup of the ``followers_markup`` switch, which answers 404 past the last page).
* ``GET /riw/<name>.jpg``: a thumbnail (about 10 kB), so a browser that does not block images
  pays for them as on the real site.

Pages start with :func:`~upstream_sim.site.routes.gate` and the session check, so the
interstitial, the age gate and the expiry modes apply as on the login side. Control:
``/_sim/site/follows`` (``control.py``).
"""

import random
import struct
import uuid
import zlib
from functools import cache
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from upstream_sim.site.follow_lists import (
    ANONYMOUS_TOTAL,
    anonymous_page,
    room_list_body,
)
from upstream_sim.site.list_pages import (
    followed_list_page,
    followers_last_page,
    followers_page,
    legacy_list_page,
    not_found_page,
)
from upstream_sim.site.routes import age_gate_shown, gate, html, require_login
from upstream_sim.site.state import Account, ListName
from upstream_sim.state import SimulatorState

ROOM_LIST_PATH = "/api/ts/roomlist/room-list/"
FOLLOWERS_PATH = "/accounts/followers/"
_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Server Error</title></head><body>"
    "<h1>Server Error (500)</h1></body></html>"
)


def _page_number(request: Request[Any, Any, Any]) -> int:
    value = request.query_params.get("page", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def _int_param(request: Request[Any, Any, Any], name: str, default: int, high: int) -> int:
    value = request.query_params.get(name, "")
    return min(high, int(value)) if value.isdigit() else default


@cache
def thumbnail() -> bytes:
    """A 180x101 PNG of about 10 kB (noise in its top rows, so it does not compress away)."""
    width, height, noisy = 180, 101, 19
    rng = random.Random(101)
    rows = b"".join(
        b"\x00" + (rng.randbytes(width * 3) if y < noisy else b"\x80" * width * 3)
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


class FollowListsController(Controller):
    """Followed-cams pages, the room-list API, followers pages, thumbnails."""

    @get(["/followed-cams/", "/followed-cams/online/"])
    async def online(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The online followed rooms."""
        return _followed(request, sim, offline=False)

    @get("/followed-cams/offline/")
    async def offline(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The offline followed rooms."""
        return _followed(request, sim, offline=True)

    @get(ROOM_LIST_PATH)
    async def room_list(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """The room-list JSON (rules in the module docstring)."""
        if request.headers.get("x-requested-with") != "XMLHttpRequest":
            return Redirect("/", status_code=302)
        if (blocked := gate(request, sim.site)) is not None:
            return blocked
        sim.site.count_list_call()
        account = sim.site.account_for_session(request.cookies.get("sessionid"))
        limit = max(1, _int_param(request, "limit", 90, 500))
        offset = _int_param(request, "offset", 0, 10**9)
        offline = request.query_params.get("offline") == "true"
        base = str(request.base_url).rstrip("/")
        list_id = str(uuid.uuid4())
        if request.query_params.get("follow") != "true" or account is None:
            rooms = anonymous_page(offset, limit)
            body = room_list_body(
                rooms, total_count=ANONYMOUS_TOTAL, base_url=base, room_list_id=list_id
            )
            return Response(body, media_type="application/json")
        page = offset // limit + 1
        if sim.site.switches.fails("offline" if offline else "online", page, "api_500"):
            return Response({"status": 500, "detail": "Internal Server Error"}, status_code=500)
        followed = account.follows.rooms(offline=offline)
        body = room_list_body(
            followed[offset : offset + limit],
            total_count=len(followed),
            base_url=base,
            room_list_id=list_id,
        )
        return Response(body, media_type="application/json")

    @get(FOLLOWERS_PATH)
    async def followers(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[Any]:
        """One page of the account's followers."""
        if (blocked := gate(request, sim.site)) is not None:
            return blocked
        account = require_login(request, sim.site)
        if isinstance(account, Response):
            return account
        switches = sim.site.switches
        page = _page_number(request)
        if switches.fails("followers", page, "http_500"):
            return html(_ERROR_PAGE, status_code=500)
        if switches.followers_markup == "table" and page > followers_last_page(
            account, switches.followers_page_size
        ):
            return html(not_found_page(account), status_code=404)  # Django's paginator: 404
        content = followers_page(
            account,
            page=page,
            page_size=switches.followers_page_size,
            age_gate=age_gate_shown(request, switches),
            broken=switches.fails("followers", page, "broken"),
            markup=switches.followers_markup,
            count_shown=switches.followers_count,
        )
        return html(content)

    @get("/riw/{image:str}")
    async def thumbnail(self, image: FromPath[str]) -> Response[bytes]:
        """A room thumbnail (the same picture for every room)."""
        if not image.endswith(".jpg"):
            raise NotFoundException()
        return Response(thumbnail(), media_type="image/png")


def _followed(
    request: Request[Any, Any, Any], sim: SimulatorState, *, offline: bool
) -> Response[Any]:
    if (blocked := gate(request, sim.site)) is not None:
        return blocked
    switches = sim.site.switches
    account: Account | None = sim.site.account_for_session(request.cookies.get("sessionid"))
    if account is None and switches.expiry_mode != "anonymous":
        refused = require_login(request, sim.site)
        assert isinstance(refused, Response)  # no live session here
        return refused
    page = _page_number(request)
    name: ListName = "offline" if offline else "online"
    if switches.fails(name, page, "http_500"):
        return html(_ERROR_PAGE, status_code=500)
    if switches.server_rendered and account is not None:
        page_html = legacy_list_page(
            account, offline=offline, page=page, page_size=switches.page_size
        )
        return html(page_html)
    content = followed_list_page(
        account,
        offline=offline,
        page_size=switches.page_size,
        age_gate=age_gate_shown(request, switches),
        broken=switches.fails(name, page, "broken"),
    )
    return html(content)
