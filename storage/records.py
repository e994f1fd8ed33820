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
