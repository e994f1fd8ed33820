"""One account's follow lists on the simulated site: followed rooms (online, offline), followers.

Rooms are objects of the site's room-list API with exactly the keys of the real 2026 sample
(FORMATS.md §3.6, ``roomlist_api_ts_room-list_2026-02-06_anonymous.json``), drawn from the
Affiliate room generator so names, subjects and counts look real. What no sample shows is a
guess, marked here: offline rows carry ``current_show: "offline"`` and ``num_users: 0``, and
their ``start_timestamp`` is the last broadcast (Cumination reads it so).

A :class:`FollowLists` never changes; follow, unfollow and new followers give a new one, so a
request being answered always sees one consistent state.
"""

import datetime as dt
import html
import random
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Self

import msgspec

from upstream_sim.rooms import Room, RoomFactory

THUMB_PATH = "/riw/"
ANONYMOUS_TOTAL = 8045
"""``total_count`` of the public list an expired session gets (the real sample's)."""
_ANONYMOUS_ROOMS = 180
_HASHTAG = re.compile(r"#(\w+)")


class ListedRoom(msgspec.Struct, frozen=True, kw_only=True):
    """One room-list object; field order is the wire key order of the real sample.

    ``img`` holds a path on the simulator (``/riw/<name>.jpg?<ts>``); the API prefixes the
    address it was asked on, so a browser loads thumbnails from the simulator itself.
    """

    display_age: int | None
    gender: str
    location: str
    current_show: str
    username: str
    room_subject: str
    tags: list[str]
    is_new: bool
    num_users: int
    num_followers: int
    start_dt_utc: str
    country: str
    has_password: bool
    private_price: int
    spy_show_price: int
    is_gaming: bool
    is_age_verified: bool
    label: str
    is_following: bool
    source_name: str
    start_timestamp: int
    img: str
    subject: str


def listed_room(
    room: Room, *, online: bool, following: bool, rng: random.Random, now: dt.datetime
) -> ListedRoom:
    """A room-list object for an Affiliate-style room."""
    if online:
        started = now - dt.timedelta(seconds=room.seconds_online)
    else:
        started = now - dt.timedelta(hours=rng.uniform(2, 24 * 60))
    timestamp = int(started.timestamp())
    linked = _HASHTAG.sub(
        lambda m: f'<a href="/tag/{m[1].lower()}/">#{m[1].lower()}</a>',
        html.escape(room.room_subject.lower(), quote=False),
    )
    return ListedRoom(
        display_age=room.age,
        gender=room.gender,
        location=room.location,
        current_show=room.current_show if online else "offline",
        username=room.username,
        room_subject=room.room_subject,
        tags=list(room.tags),
        is_new=room.is_new,
        num_users=room.num_users if online else 0,
        num_followers=room.num_followers,
        start_dt_utc=started.isoformat(timespec="microseconds"),
        country=room.country,
        has_password=rng.random() < 0.01,
        private_price=rng.choice((-1, -1, 60, 90, 240)),
        spy_show_price=rng.choice((0, 0, 6, 30)),
        is_gaming=rng.random() < 0.02,
        is_age_verified=rng.random() < 0.9,
        label="public",
        is_following=following,
        source_name="df",
        start_timestamp=timestamp,
        img=f"{THUMB_PATH}{room.username}.jpg?{timestamp}",
        subject=linked,
    )


def _rooms(count: int, *, rng: random.Random, factory: RoomFactory) -> list[Room]:
    return [factory.make(rng) for _ in range(count)]


class FollowLists:
    """The followed rooms (online, then offline, in site order) and the followers of one account.

    Attributes:
        online: followed rooms that are live.
        offline: followed rooms that are not.
        followers: usernames of the account's followers, newest first.
    """

    def __init__(
        self,
        online: Sequence[ListedRoom] = (),
        offline: Sequence[ListedRoom] = (),
        followers: Sequence[str] = (),
    ) -> None:
        """Lists as given (see :meth:`generate` for realistic ones)."""
        self.online = tuple(online)
        self.offline = tuple(offline)
        self.followers = tuple(followers)

    @classmethod
    def generate(cls, *, online: int, offline: int, followers: int, seed: int) -> Self:
        """Deterministic lists: the same counts and seed give the same rooms and names."""
        rng = random.Random(seed)
        factory = RoomFactory(wm="sim")
        now = dt.datetime.now(dt.UTC)
        rooms = _rooms(online + offline, rng=rng, factory=factory)
        listed = [
            listed_room(room, online=index < online, following=True, rng=rng, now=now)
            for index, room in enumerate(rooms)
        ]
        names = [room.username for room in _rooms(followers, rng=rng, factory=factory)]
        return cls(listed[:online], listed[online:], names)

    def rooms(self, *, offline: bool) -> tuple[ListedRoom, ...]:
        """One of the two followed lists."""
        return self.offline if offline else self.online

    def followed_names(self) -> list[str]:
        """Every followed username, online first."""
        return [room.username for room in self.online + self.offline]

    def follow(self, username: str, *, online: bool) -> "FollowLists":
        """These lists plus a newly followed room (drawn from the name), first in its list."""
        rng = random.Random(zlib.crc32(username.encode()))
        room = msgspec.structs.replace(RoomFactory(wm="sim").make(rng), username=username)
        now = dt.datetime.now(dt.UTC)
        new = listed_room(room, online=online, following=True, rng=rng, now=now)
        if online:
            return FollowLists((new, *self.online), self.offline, self.followers)
        return FollowLists(self.online, (new, *self.offline), self.followers)

    def unfollow(self, username: str) -> "FollowLists":
        """These lists without ``username`` among the followed rooms."""
        return FollowLists(
            [room for room in self.online if room.username != username],
            [room for room in self.offline if room.username != username],
            self.followers,
        )

    def with_followers(self, names: Iterable[str]) -> "FollowLists":
        """These lists with another followers list."""
        return FollowLists(self.online, self.offline, list(names))


_anonymous: list[ListedRoom] = []


def anonymous_rooms() -> list[ListedRoom]:
    """The public list (rows not followed) served to a request without a live session."""
    if not _anonymous:
        rng = random.Random(20260206)
        now = dt.datetime.now(dt.UTC)
        rooms = _rooms(_ANONYMOUS_ROOMS, rng=rng, factory=RoomFactory(wm="sim"))
        _anonymous.extend(
            listed_room(room, online=True, following=False, rng=rng, now=now) for room in rooms
        )
    return _anonymous


def room_list_body(
    rooms: Sequence[ListedRoom], *, total_count: int, base_url: str, room_list_id: str
) -> bytes:
    """The API's JSON envelope around ``rooms``, thumbnails pointing at ``base_url``."""
    prefixed = [msgspec.structs.replace(room, img=base_url + room.img) for room in rooms]
    return msgspec.json.encode(
        {
            "rooms": prefixed,
            "total_count": total_count,
            "all_rooms_count": max(total_count, ANONYMOUS_TOTAL + 1151),
            "room_list_id": room_list_id,
            "bls_payload": '{"vertex_attr_token": ""}',
            "has_fingerprint": False,
        }
    )


def anonymous_page(offset: int, limit: int) -> list[ListedRoom]:
    """``limit`` public rooms from ``offset`` (the generated ones, repeated cyclically)."""
    pool = anonymous_rooms()
    end = min(offset + limit, ANONYMOUS_TOTAL)
    return [pool[index % len(pool)] for index in range(offset, end)]
