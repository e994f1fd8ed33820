"""Test data shaped like production's: upstream records for the storage writers, and the API
token the app under test is built with. One factory per record type for the whole suite.

The records are clean, as the decoders make them (``storage/records.py``): give lower-case
names and None rather than ``""``; a gender may be given as upstream sends it (``s``,
``Female``): ``raw`` keeps it, the record holds its letter, as after decoding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from formats.affiliate import decode_page
from formats.events import decode_events
from storage.records import ActivitySegment, AffiliateRoom, CbhoursLive, RoomEvent, gender_code

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def room(username: str, **fields: Any) -> AffiliateRoom:
    """An Affiliate room object with plausible defaults; ``raw`` mirrors the fields unless given."""
    values: dict[str, Any] = {
        "username": username,
        "gender": "f",
        "location": "Somewhere",
        "current_show": "public",
        "room_subject": f"{username}'s room",
        "tags": [],
        "is_new": False,
        "num_users": 10,
        "num_followers": 100,
        "country": "US",
        "spoken_languages": "English",
        "display_name": username.title(),
        "birthday": dt.date(2000, 1, 2),
        "is_hd": True,
        "age": 25,
        "seconds_online": 60,
        "image_url": f"https://img.example/{username}.jpg",
        "image_url_360x270": None,
        "chat_room_url_revshare": None,
        "iframe_embed_revshare": None,
        "chat_room_url": None,
        "iframe_embed": None,
        "slug": username,
    }
    raw: bytes | None = fields.pop("raw", None)  # given: the stored JSON as it is (a test's NUL)
    values.update(fields)
    mirrored = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()}
    raw = raw if raw is not None else msgspec.json.encode(mirrored)
    return AffiliateRoom(**{**values, "gender": gender_code(values["gender"])}, raw=raw)


def segment(
    username: str, segment_at: dt.datetime, rank: int, followers: int, viewers: int = 3
) -> ActivitySegment:
    """A CBHours activity sample of a public show; the global rank is half the rank."""
    return ActivitySegment(
        username=username,
        segment_at=segment_at,
        type="_public",
        rank=rank,
        grank=rank // 2,
        followers=followers,
        viewers=viewers,
        gender="f",
    )


def live(username: str, online: bool = True, **fields: Any) -> CbhoursLive:
    """A CBHours ``get_live`` model; offline rows carry only the status, like upstream."""
    if not online:
        return CbhoursLive(username=username, room_status="Offline", raw=b'{"room_status":"x"}')
    values: dict[str, Any] = {
        "gender": "Female",
        "rank": 100,
        "grank": 50,
        "viewers": 20,
        "followers": 200,
        "current_show": "public",
        "room_subject": "hi",
        "tags": [],
        "is_new": False,
    }
    values.update(fields)
    raw = msgspec.json.encode({"room_status": "Online", "username": username, **values})
    values["gender"] = gender_code(values["gender"])
    return CbhoursLive(username=username, room_status="Online", raw=raw, **values)


SAMPLE = Path(__file__).parent / "fixtures/affiliate_onlinerooms_2025-09-06_region-asia_FULL.json"


def sample_rooms(limit: int = 50) -> list[AffiliateRoom]:
    """The first rooms of a real Affiliate page, decoded by the spider's decoder."""
    rooms, _ = decode_page(SAMPLE.read_bytes())
    return rooms[:limit]


def room_event(
    method: str,
    at: dt.datetime,
    username: str | None = None,
    *,
    seq: int = 0,
    store_message_text: bool = True,
    **parts: Any,
) -> RoomEvent:
    """One Events API event, made by the stream's decoder from its wire form.

    Args:
        at: its time (the id is ``<milliseconds of at>-<seq>``).
        username: the event's ``user`` (a viewer with tokens), None for none.
        parts: more of ``object`` as the API sends it (``tip={"tokens": 5, ...}``).
    """
    part: dict[str, Any] = {"broadcaster": "owner", **parts}
    if username is not None:
        part["user"] = {
            "username": username,
            "inFanclub": False,
            "hasTokens": True,
            "isMod": False,
            "recentTips": "none",
            "gender": "m",
            "subgender": "",
        }
    event_id = f"{int(at.timestamp() * 1000)}-{seq}"
    body = {"events": [{"method": method, "id": event_id, "object": part}], "nextUrl": "x"}
    (event,) = decode_events(msgspec.json.encode(body), store_message_text=store_message_text)[0]
    return event
