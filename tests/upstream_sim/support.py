"""What the simulator tests share besides fixtures: the feed's size and seed, the samples, and
how a client pages through the feed."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"
ROOMS = 1200
SEED = 7
WM = "T3stWm"
BASE_PARAMS = {"wm": WM, "client_ip": "request_ip"}
OWNER = "owner_room"
"""The broadcaster whose Events and Stats APIs the owner fixture sets up."""


def sample_rooms(name: str) -> list[dict[str, Any]]:
    """The ``results`` of one real 2025 Affiliate sample."""
    document = msgspec.json.decode((SAMPLES / name).read_bytes())
    rooms: list[dict[str, Any]] = document["results"]
    return rooms


def crawl(client: httpx.Client, url: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Page through the feed the documented way: offset += limit until offset >= count."""
    rooms: list[dict[str, Any]] = []
    offset = 0
    while True:
        reply = client.get(url, params={**BASE_PARAMS, **params, "limit": limit, "offset": offset})
        reply.raise_for_status()
        page = reply.json()
        rooms.extend(page["results"])
        offset += limit
        if offset >= page["count"] or not page["results"]:
            return rooms


def read_stream(
    client: httpx.Client, url: str, *, timeout: float = 0
) -> tuple[list[dict[str, Any]], list[int], str]:
    """Follow ``nextUrl`` from ``url`` until an answer has no events, as a client does.

    Returns:
        Every event read, the number of events in each non-empty answer, and the last
        ``nextUrl`` (where a client resumes).
    """
    events: list[dict[str, Any]] = []
    pages: list[int] = []
    separator = "&" if "?" in url else "?"
    url = f"{url}{separator}timeout={timeout:g}" if "timeout=" not in url else url
    while True:
        reply = client.get(url)
        reply.raise_for_status()
        body = reply.json()
        url = body["nextUrl"]
        if not body["events"]:
            return events, pages, url
        events.extend(body["events"])
        pages.append(len(body["events"]))


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)
