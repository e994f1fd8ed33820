"""HTTP face of the simulated Chaturbate Affiliate API: the current and the legacy endpoint.

Query parameters follow the official table (FORMATS.md §1.2). Where the docs are silent, the
simulator is strict, so client bugs show up as a 400 naming the parameter instead of passing
silently:

* ``wm`` and ``client_ip`` are required; ``client_ip`` must be an IP address or ``request_ip``.
* ``format`` other than ``json`` is refused (xml and yaml are not simulated).
* ``limit`` must be an integer 1-500 (default 100), ``offset`` an integer >= 0 (default 0).
* ``gender`` (repeatable) takes ``f``, ``m``, ``t``, ``c``, and ``s`` as an alias of ``t``
  (the legacy trans code, §1.5); ``region`` (repeatable) takes the five documented regions;
  ``hd`` takes ``true``/``false``; ``exhibitionist`` is accepted and ignored.
* ``tag`` is repeatable up to 5 times; a room matches if it has ANY of the given tags (the
  docs do not say whether tags combine with AND or OR; OR is the forgiving reading, and a
  crawler that asks per tag gets the same rooms either way). Matching is case-insensitive.

Within one parameter, repeated values are alternatives; different parameters all apply.
"""

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType

from upstream_sim.affiliate.feed import AffiliateFeed, FeedQuery
from upstream_sim.parameters import ParameterError
from upstream_sim.rooms import REGIONS

ONLINE_ROOMS_PATH = "/api/public/affiliates/onlinerooms/"
LEGACY_ONLINE_ROOMS_PATH = "/affiliates/api/onlinerooms/"
MAX_LIMIT = 500
MAX_TAGS = 5
_INTEGER = re.compile(r"-?[0-9]+")
_GENDER_CODES = {"f": "f", "m": "m", "t": "t", "c": "c", "s": "t"}


def parse_feed_query(params: Mapping[str, Sequence[str]]) -> FeedQuery:
    """Validate the query of an online-rooms request.

    Args:
        params: Each parameter name with all its values, in request order.

    Raises:
        ParameterError: On the first missing or invalid parameter.
    """
    wm = _required(params, "wm")
    client_ip = _required(params, "client_ip")
    if client_ip != "request_ip":
        try:
            ipaddress.ip_address(client_ip)
        except ValueError as exc:
            raise ParameterError("client_ip", "expected an IP address or request_ip") from exc
    if _first(params, "format", "json") != "json":
        raise ParameterError("format", "only json is supported")
    tags = params.get("tag", [])
    if len(tags) > MAX_TAGS:
        raise ParameterError("tag", f"at most {MAX_TAGS} tags are allowed")
    hd = _first(params, "hd", "")
    if hd not in ("", "true", "false"):
        raise ParameterError("hd", "expected true or false")
    return FeedQuery(
        wm=wm,
        limit=_integer(params, "limit", default=100, low=1, high=MAX_LIMIT),
        offset=_integer(params, "offset", default=0, low=0, high=None),
        genders=frozenset(_choice(params, "gender", _GENDER_CODES)),
        regions=frozenset(_choice(params, "region", {r: r for r in REGIONS})),
        tags=frozenset(tag.lower() for tag in tags),
        hd=None if hd == "" else hd == "true",
    )


class AffiliateController(Controller):
    """Routes of the Affiliate API. Needs a ``feed`` dependency (see ``affiliate_router``)."""

    @get(ONLINE_ROOMS_PATH)
    async def online_rooms(
        self, request: Request[Any, Any, Any], feed: NamedDependency[AffiliateFeed]
    ) -> Response[bytes]:
        """One page of online rooms: ``{"results": [...], "count": N}``."""
        query = parse_feed_query(_query_lists(request))
        return Response(feed.page(query), media_type=MediaType.JSON)

    @get(LEGACY_ONLINE_ROOMS_PATH)
    async def legacy_online_rooms(
        self, request: Request[Any, Any, Any], feed: NamedDependency[AffiliateFeed]
    ) -> Response[bytes]:
        """Every online room in the 2017 shape, as a bare JSON array (no paging)."""
        params = _query_lists(request)
        wm = _required(params, "wm")
        if _first(params, "format", "json") != "json":
            raise ParameterError("format", "only json is supported")
        return Response(feed.legacy_array(wm), media_type=MediaType.JSON)


def parameter_error_response(_: Request[Any, Any, Any], exc: ParameterError) -> Response[bytes]:
    """Exception handler: a small JSON 400 that names the parameter."""
    body = msgspec.json.encode({"error": exc.detail, "parameter": exc.parameter})
    return Response(body, status_code=400, media_type=MediaType.JSON)


def _query_lists(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    params = request.query_params
    return {key: [str(value) for value in params.getall(key)] for key in params}


def _first(params: Mapping[str, Sequence[str]], name: str, default: str) -> str:
    values = params.get(name)
    return values[0] if values else default


def _required(params: Mapping[str, Sequence[str]], name: str) -> str:
    value = _first(params, name, "")
    if not value:
        raise ParameterError(name, f"{name} is required")
    return value


def _integer(
    params: Mapping[str, Sequence[str]], name: str, *, default: int, low: int, high: int | None
) -> int:
    raw = _first(params, name, "")
    if raw == "":
        return default
    # Stricter than int(): no "+5", " 5" or "5_0", which a real server may not accept either.
    if _INTEGER.fullmatch(raw) is None:
        raise ParameterError(name, f"expected an integer, got {raw!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f">= {low}"
        raise ParameterError(name, f"must be {bounds}, got {value}")
    return value


def _choice(params: Mapping[str, Sequence[str]], name: str, codes: Mapping[str, str]) -> list[str]:
    chosen = []
    for value in params.get(name, []):
        if value not in codes:
            raise ParameterError(name, f"unknown value {value!r}; expected one of {sorted(codes)}")
        chosen.append(codes[value])
    return chosen
