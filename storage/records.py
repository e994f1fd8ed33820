"""What the writers accept: one frozen Struct per kind of observation, as the decoders build them.

A record is clean: the decoder that built it (where the data came in) did every clean-up once,
and the writers store it as it is. Every record guarantees:

* ``username`` is lower case (Chaturbate names are case-insensitive; ``persons`` holds them so);
* ``gender`` is one of ``f``, ``m``, ``c``, ``t`` (:func:`gender_code`), or None if not given;
* ``tags`` are lower case;
* a value upstream leaves empty to mean "not set" (country, languages, display name, location,
  birthday) is None, never ``""``, so the merge view falls back to another source. Text that is
  set but empty is kept (an empty room subject is a subject).

A field of a record is a column of the table that stores it, by the same name
(``storage/tables.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec


def gender_code(value: str) -> str:
    """The gender a record holds, from what a source sends: ``f``, ``m``, ``c`` or ``t`` as
    letters (the Affiliate feed, the site) or words (CBHours: ``Female``); legacy feeds send
    ``s`` for trans."""
    code = value[:1].lower()
    return "t" if code == "s" else code


class AffiliateRoom(msgspec.Struct, frozen=True, kw_only=True):
    """One room object of the Affiliate online-rooms feed (FORMATS.md §1.4), already decoded.

    Clean as the module says: ``location``, ``country``, ``spoken_languages``, ``display_name``
    and ``birthday`` are None when the feed leaves them empty. ``raw`` is the object exactly as
    received (JSON bytes), unknown fields included.
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
    """One model of a CBHours ``get_live`` answer; offline rows carry only the status.

    Clean as the module says; ``room_status`` is exactly ``Online`` or ``Offline``, ``gender``
    a letter (CBHours sends ``Female``), ``raw`` the model's object as received.
    """

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
        return self.room_status == "Online"


class ActivitySegment(msgspec.Struct, frozen=True, kw_only=True):
    """One 3-minute CBHours activity sample, its time already converted to UTC; clean as the
    module says."""

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


class RoomObservation(msgspec.Struct, frozen=True, kw_only=True):
    """What a followed-cams list (or a followers page) showed about one person; clean as the
    module says.

    Fields a list did not show are None; only the groups it showed are stored. Each field is
    named as the ``person_source_latest`` column it fills.

    Attributes:
        username: lower-cased.
        online: the room was live (online list) or not (offline list); None: not shown.
        current_show: ``public``, ``private``, ... or ``offline``.
        viewers: people in the room.
        subject: the room's subject as typed by the broadcaster.
        followers: the room's follower count.
        tags: hashtags, lower-cased.
        gender: ``f``, ``m``, ``c`` or ``t``.
        age: the displayed age.
        location: free text.
        country: ISO code.
        image_url: the upstream thumbnail (it expires).
    """

    username: str
    online: bool | None = None
    current_show: str | None = None
    viewers: int | None = None
    subject: str | None = None
    followers: int | None = None
    tags: list[str] | None = None
    gender: str | None = None
    age: int | None = None
    location: str | None = None
    country: str | None = None
    image_url: str | None = None


class WriteResult(msgspec.Struct, frozen=True):
    """What a write did: rows new to the database, rows it already had (idempotent rewrite),
    and the usernames of rows the database refused, set aside instead of failing the batch."""

    inserted: int
    duplicates: int
    set_aside: tuple[str, ...] = ()


RoomMethod = Literal[
    "broadcastStart",
    "broadcastStop",
    "userEnter",
    "userLeave",
    "follow",
    "unfollow",
    "fanclubJoin",
    "chatMessage",
    "privateMessage",
    "tip",
    "roomSubjectChange",
    "mediaPurchase",
]
"""The Events API's documented methods (FORMATS.md §6.1); an event of another method is
stored too, with its method as sent."""


class RoomEventRow(msgspec.Struct, frozen=True, kw_only=True):
    """One event of the owner's room as the reads return it: the typed columns of ``room_events``
    (the raw JSON stays in the table). :class:`RoomEvent` is the decoded event, these and more.
    """

    event_id: str
    occurred_at: dt.datetime
    method: str
    username: str | None
    tokens: int | None
    is_anon: bool | None
    in_fanclub: bool | None
    has_tokens: bool | None
    is_mod: bool | None
    recent_tips: str | None
    gender: str | None
    subgender: str | None
    message: str | None
    subject: str | None
    media_id: int | None
    media_type: str | None
    media_name: str | None
    from_user: str | None
    to_user: str | None


class RoomEvent(RoomEventRow, frozen=True, kw_only=True):
    """One event of the owner's Events API stream (FORMATS.md §6.1), decoded.

    ``occurred_at`` is read from the id (``<milliseconds>-<sequence>``). ``username`` is the
    user the event is about, lower case (``fromUser`` for a private message), None when the
    event names no one. A field the event does not carry is None. ``message`` is None when
    ``events.store_message_text`` is off, and ``raw`` (the event as received) then has its
    message texts removed too.
    """

    broadcaster: str | None
    raw: bytes


class RoomStatsRow(msgspec.Struct, frozen=True, kw_only=True):
    """One Stats API answer (FORMATS.md §6.2); every ``-1`` ("unknown") is None.

    ``username`` is the account (lower case); ``time_online`` is in minutes.
    """

    username: str
    num_followers: int | None
    num_viewers: int | None
    num_registered_viewers: int | None
    num_tokened_viewers: int | None
    token_balance: int | None
    tips_in_last_hour: int | None
    votes_up: int | None
    votes_down: int | None
    satisfaction_score: int | None
    last_broadcast: dt.datetime | None
    time_online: int | None
    raw: bytes
