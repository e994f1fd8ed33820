"""What the writers accept: one frozen Struct per kind of observation, as the pipelines build them.

Usernames are lower-cased by the writers; empty strings that mean "not set" upstream (country,
display name, birthday) are stored as NULL so the merge view can fall back to another source.
"""

from __future__ import annotations

import datetime as dt

import msgspec


class AffiliateRoom(msgspec.Struct, frozen=True, kw_only=True):
    """One room object of the Affiliate online-rooms feed (FORMATS.md §1.4), already decoded.

    ``raw`` is the object exactly as received (JSON bytes), unknown fields included.
    """

    username: str
    gender: str
    location: str | None
    current_show: str
    room_subject: str | None
    tags: list[str]
    is_new: bool
    num_users: int
    num_followers: int
    country: str | None
    spoken_languages: str | None
    display_name: str | None
    birthday: dt.date | None
    is_hd: bool | None
    age: int | None
    seconds_online: int | None
    image_url: str | None
    image_url_360x270: str | None
    chat_room_url_revshare: str | None
    iframe_embed_revshare: str | None
    chat_room_url: str | None
    iframe_embed: str | None
    slug: str | None
    raw: bytes


class CbhoursLive(msgspec.Struct, frozen=True, kw_only=True):
    """One model of a CBHours ``get_live`` answer; offline rows carry only the status."""

    username: str
    room_status: str
    gender: str | None = None
    rank: int | None = None
    grank: int | None = None
    viewers: int | None = None
    followers: int | None = None
    current_show: str | None = None
    room_subject: str | None = None
    tags: list[str] | None = None
    is_new: bool | None = None
    raw: bytes = b"{}"

    @property
    def online(self) -> bool:
        return self.room_status.lower() == "online"


class ActivitySegment(msgspec.Struct, frozen=True, kw_only=True):
    """One 3-minute CBHours activity sample, its time already converted to UTC."""

    username: str
    segment_at: dt.datetime
    type: str
    rank: int | None
    grank: int | None
    followers: int | None
    viewers: int | None
    gender: str | None


class DailyActivity(msgspec.Struct, frozen=True, kw_only=True):
    """Online minutes of one local day, as CBHours counts them for the given ``tzo``."""

    username: str
    day: dt.date
    online_minutes: int
    tzo: int


class WriteResult(msgspec.Struct, frozen=True):
    """What a write did: rows new to the database, rows it already had (idempotent rewrite),
    and the usernames of rows the database refused, set aside instead of failing the batch."""

    inserted: int
    duplicates: int
    set_aside: tuple[str, ...] = ()
