"""The simulated Affiliate feed: the online rooms in ranking order, served from cached bytes.

Each room is encoded once (with a placeholder campaign) and pages are spliced together from
those bytes, so a 500-room page costs a join and one ``bytes.replace`` for ``wm`` rather than
500 encodes; a benchmark paging 10,000 rooms measures the crawler, not the simulator. The cache
is rebuilt lazily after any change (reset, churn, ``set_rooms``); the page-shift switch only
rotates the cached list. All methods take one lock because tests drive the feed from their
own thread while uvicorn serves it from another.
"""

import random
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

import msgspec

from upstream_sim.affiliate.legacy import encode_legacy_rooms, escape_slashes
from upstream_sim.rooms import (
    THUMBNAIL_BASE,
    Room,
    RoomFactory,
    encode_room,
    generate_rooms,
    with_campaign,
)


def _json_text(value: str) -> bytes:
    """``value`` as it appears between the quotes of a JSON string."""
    return msgspec.json.encode(value)[1:-1]


# A campaign value no real request sends: rooms are encoded once with it and each response
# substitutes the request's JSON-escaped ``wm``.
_WM_SLOT = "\x00wm\x00"
_WM_SLOT_BYTES = _json_text(_WM_SLOT)
INSPECTION_CAMPAIGN = "roomwatch-sim"
"""Campaign in the link fields of :attr:`AffiliateFeed.rooms` (responses use the request's)."""


class FeedQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A validated online-rooms request. Empty filter sets mean "no filter"."""

    wm: str
    limit: int = 100
    offset: int = 0
    genders: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    hd: bool | None = None

    @property
    def filtered(self) -> bool:
        """Whether any filter is set (the unfiltered path is a plain slice)."""
        return bool(self.genders or self.regions or self.tags) or self.hd is not None

    def matches(self, room: Room) -> bool:
        """Whether ``room`` passes every filter; ``tags`` matches if the room has ANY of them."""
        return (
            (not self.genders or room.gender in self.genders)
            and (not self.regions or room.region in self.regions)
            and (not self.tags or not self.tags.isdisjoint(room.tags))
            and (self.hd is None or room.is_hd == self.hd)
        )


class TickSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What one churn step changed."""

    went_offline: list[str]
    came_online: list[str]
    online: int


class AffiliateFeed:
    """Online rooms in a stable "site ranking", plus the knobs tests turn."""

    def __init__(
        self,
        count: int = 0,
        *,
        seed: int = 0,
        move_between_pages: int = 0,
        today: date | None = None,
        thumbnail_base: str = THUMBNAIL_BASE,
    ) -> None:
        """Create the feed with ``count`` generated rooms.

        Args:
            count: Rooms online at start.
            seed: Seed of the generator and of the default churn randomness.
            move_between_pages: See :attr:`move_between_pages`.
            today: Date ages are computed against; defaults to the current date.
            thumbnail_base: See :attr:`thumbnail_base`.
        """
        self._lock = threading.Lock()
        self.thumbnail_base = thumbnail_base
        """Where ``image_url`` points: the real host by default; tests set it to the
        simulator's own ``<base_url>/ri/`` so a crawler can download the thumbnails."""
        self._today = today
        self._rooms: list[Room] = []
        self._encoded: list[bytes] | None = None
        self._legacy: bytes | None = None
        self._seed = seed
        self._move = 0
        self._factory = RoomFactory(wm=INSPECTION_CAMPAIGN, today=today)
        self._rng = random.Random(seed)
        self.reset(count, seed, move_between_pages=move_between_pages)

    def __len__(self) -> int:
        """How many rooms are online."""
        with self._lock:
            return len(self._rooms)

    @property
    def rooms(self) -> tuple[Room, ...]:
        """A snapshot of the online rooms in ranking order."""
        with self._lock:
            return tuple(self._rooms)

    @property
    def seed(self) -> int:
        """The seed of the last reset."""
        return self._seed

    @property
    def move_between_pages(self) -> int:
        """Rooms moved from the end of the ranking to the front after each page request.

        Models rooms changing rank while a crawler pages: with K > 0, paging sees some
        usernames twice and misses others. 0 keeps the ranking still.
        """
        return self._move

    @move_between_pages.setter
    def move_between_pages(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"move_between_pages must be >= 0, got {value}")
        self._move = value

    def reset(self, count: int, seed: int, *, move_between_pages: int | None = None) -> None:
        """Replace all rooms with ``count`` freshly generated ones.

        Args:
            count: Rooms online after the reset.
            seed: Same seed, same rooms in the same order.
            move_between_pages: New page-shift setting; unchanged when None.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        rooms = generate_rooms(count, seed=seed, wm=INSPECTION_CAMPAIGN, today=self._today)
        factory = RoomFactory(wm=INSPECTION_CAMPAIGN, today=self._today)
        factory.reserve(room.username for room in rooms)
        with self._lock:
            self._rooms = rooms
            self._factory = factory
            self._rng = random.Random(seed)
            self._seed = seed
            self._invalidate()
        if move_between_pages is not None:
            self.move_between_pages = move_between_pages

    def set_rooms(self, rooms: Sequence[Room]) -> None:
        """Replace the online rooms with hand-made ones, in the given ranking order."""
        with self._lock:
            self._rooms = list(rooms)
            self._factory.reserve(room.username for room in rooms)
            self._invalidate()

    def update_room(self, username: str, **changes: Any) -> Room:
        """Change some fields of one online room, keeping its rank; returns the new room.

        For hand-made values in an otherwise generated feed, e.g. a display name or subject
        with markup in it: ``feed.update_room(name, display_name="<b>bold</b>")``.

        Raises:
            KeyError: No online room has that username.
            TypeError: A change names no field of :class:`Room`.
        """
        with self._lock:
            for index, room in enumerate(self._rooms):
                if room.username == username:
                    updated = msgspec.structs.replace(room, **changes)
                    self._rooms[index] = updated
                    self._factory.reserve([updated.username])
                    self._invalidate()
                    return updated
        raise KeyError(username)

    def page(self, query: FeedQuery) -> bytes:
        """Answer one online-rooms request with the ``{"results": [...], "count": N}`` body.

        ``count`` is the number of rooms matching the filters, not the page size.
        """
        with self._lock:
            encoded = self._encoded_rooms()
            if query.filtered:
                matching = [encoded[i] for i, room in enumerate(self._rooms) if query.matches(room)]
            else:
                matching = encoded
            selected = matching[query.offset : query.offset + query.limit]
            body = b"".join(
                (b'{"results":[', b",".join(selected), b'],"count":', b"%d}" % len(matching))
            )
            self._shift()
        body = body.replace(_WM_SLOT_BYTES, _json_text(query.wm))
        if self.thumbnail_base != THUMBNAIL_BASE:
            body = body.replace(_json_text(THUMBNAIL_BASE), _json_text(self.thumbnail_base))
        return body

    def legacy_array(self, wm: str) -> bytes:
        """Answer the legacy endpoint: every online room in the 2017 shape, as a bare array."""
        with self._lock:
            if self._legacy is None:
                self._legacy = encode_legacy_rooms(self._rooms, _WM_SLOT)
            body = self._legacy
        return body.replace(escape_slashes(_WM_SLOT_BYTES), escape_slashes(_json_text(wm)))

    def tick(
        self, rng: random.Random | None = None, *, seconds: int = 60, churn: float = 0.02
    ) -> TickSummary:
        """Advance the feed by one step of churn.

        About ``churn`` of the rooms go offline and as many new ones come online at random
        ranks; the rest drift (viewers up or down, followers up) and their ``seconds_online``
        grows by ``seconds``.

        Args:
            rng: Randomness to use; the feed's own seeded generator when None, so a sequence
                of ticks after a reset is reproducible.
            seconds: Time the step represents.
            churn: Fraction of rooms replaced.
        """
        with self._lock:
            rng = rng or self._rng
            size = len(self._rooms)
            leaving = set(rng.sample(range(size), min(size, int(size * churn + rng.random()))))
            went = [self._rooms[i].username for i in sorted(leaving)]
            staying = [
                _drift(room, rng, seconds) for i, room in enumerate(self._rooms) if i not in leaving
            ]
            arrivals = int(size * churn + rng.random()) if size else 0
            came: list[str] = []
            for _ in range(arrivals):
                room = self._factory.make(rng)
                room = msgspec.structs.replace(room, seconds_online=rng.randint(7, max(7, seconds)))
                staying.insert(rng.randint(0, len(staying)), room)
                came.append(room.username)
            self._rooms = staying
            self._invalidate()
            return TickSummary(went_offline=went, came_online=came, online=len(staying))

    def _encoded_rooms(self) -> list[bytes]:
        if self._encoded is None:
            self._encoded = [encode_room(with_campaign(room, _WM_SLOT)) for room in self._rooms]
        return self._encoded

    def _shift(self) -> None:
        move = min(self._move, len(self._rooms))
        if move == 0:
            return
        self._rooms = self._rooms[-move:] + self._rooms[:-move]
        if self._encoded is not None:
            self._encoded = self._encoded[-move:] + self._encoded[:-move]
        self._legacy = None

    def _invalidate(self) -> None:
        self._encoded = None
        self._legacy = None


def _drift(room: Room, rng: random.Random, seconds: int) -> Room:
    users = max(0, min(5780, round(room.num_users * rng.lognormvariate(0.0, 0.15))))
    return msgspec.structs.replace(
        room,
        num_users=users,
        num_followers=room.num_followers + rng.randint(0, 1 + users // 20),
        seconds_online=room.seconds_online + seconds,
    )
