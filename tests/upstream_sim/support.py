"""What the simulator tests share besides fixtures: the feed's size and seed, the samples, and
how a client pages through the feed."""

from pathlib import Path
from typing import Any

import httpx
import msgspec

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures"
ROOMS = 1200
SEED = 7
WM = "T3stWm"
BASE_PARAMS = {"wm": WM, "client_ip": "request_ip"}


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
