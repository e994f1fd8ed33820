"""What the simulated CBHours API knows: the trophy set, live rows, activity history, rate limit.

The state is plain data plus a deterministic generator: activity for a (seed, username, UTC
day) is drawn from its own ``random.Random``, so seeding overlapping ranges, or the same range
twice, gives the same segments. History is stored as 3-minute segments on UTC instants; the
HTTP face (``routes.py``) shifts them into the client's ``tzo`` and groups them by local day.
Usernames are case-insensitive on CBHours (FORMATS.md §2.3), so every name is stored lowercase.
All methods take one lock because tests drive the state from their own thread while uvicorn
serves it from another.
"""

import bisect
import random
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import msgspec

from upstream_sim.cbhours.limit import RateLimit, RateLimitView
from upstream_sim.rooms import RoomFactory

SEGMENT_MINUTES = 3
_SEGMENTS_PER_DAY = 24 * 60 // SEGMENT_MINUTES
_FOLLOWER_ANCHOR = date(2025, 1, 1)
LiveGender = Literal["Female", "Male", "Trans", "Couple"]
_LIVE_GENDERS: dict[str, LiveGender] = {"f": "Female", "m": "Male", "t": "Trans", "c": "Couple"}
_SEGMENT_GENDERS = {name: code for code, name in _LIVE_GENDERS.items()}
_SHOW_TYPES = ("_private", "_group", "_ticket")
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class LiveOnline(msgspec.Struct, frozen=True, kw_only=True, tag_field="room_status", tag="Online"):
    """A ``get_live`` row of a model on cam; encodes with all keys of the doc example, in order.

    The ``room_status`` key is the struct's tag, so msgspec writes it first, as the doc does.
    """

    gender: LiveGender = "Female"
    rank: _NonNegative = 1
    grank: _NonNegative = 1
    viewers: _NonNegative = 0
    followers: _NonNegative = 0
    current_show: str = "public"
    room_subject: str = ""
    tags: tuple[str, ...] = ()
    is_new: bool = False


class LiveOffline(msgspec.Struct, frozen=True, tag_field="room_status", tag="Offline"):
    """A ``get_live`` row of a model off cam: ``{"room_status": "Offline"}`` and nothing else."""


LiveStatus = LiveOnline | LiveOffline


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    """One 3-minute sample of a model on cam (numbers here; the wire has numeric strings).

    Attributes:
        at: When the sample was taken, timezone-aware (stored in UTC).
        type: ``_public``, ``_private``, ``_group`` or ``_ticket``.
        gender: One-letter code as in ``get_activity`` (``f``, ``m``, ``t``, ``c``).
    """

    at: datetime
    type: str = "_public"
    rank: int
    grank: int
    followers: int
    viewers: int
    gender: str = "f"


class CbhoursStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the CBHours state holds now."""

    seed: int
    trophy: list[str]
    online: list[str]
    segments: dict[str, int]
    rate_limit: RateLimitView


class CbhoursState:
    """The trophy database, live rows and activity history of the simulated CBHours."""

    def __init__(
        self, *, seed: int = 0, trophy: Iterable[str] = (), rate_limit: RateLimit | None = None
    ) -> None:
        """Create the state.

        Args:
            seed: Seed of every generated value (activity, random live rows).
            trophy: Usernames in the trophy database at start.
            rate_limit: The limiter; a 1 request/second one when None.
        """
        self._lock = threading.Lock()
        self._seed = seed
        self._trophy = {_name(user) for user in trophy}
        self._live: dict[str, LiveStatus] = {}
        self._activity: dict[str, list[Segment]] = {}
        self.rate_limit = rate_limit or RateLimit()

    @property
    def seed(self) -> int:
        """The seed of the last reset."""
        return self._seed

    @property
    def trophy(self) -> frozenset[str]:
        """The usernames in the trophy database (the only ones the API answers for)."""
        with self._lock:
            return frozenset(self._trophy)

    def reset(self, seed: int = 0, *, trophy: Iterable[str] = ()) -> None:
        """Forget every model and the limiter's clock and counters; keep limiter settings."""
        with self._lock:
            self._seed = seed
            self._trophy = {_name(user) for user in trophy}
            self._live.clear()
            self._activity.clear()
        self.rate_limit.reset()

    def add_trophy(self, *usernames: str) -> None:
        """Put models into the trophy database."""
        with self._lock:
            self._trophy.update(_name(user) for user in usernames)

    def remove_trophy(self, *usernames: str) -> None:
        """Take models out of the trophy database; their live row and history are kept."""
        with self._lock:
            self._trophy.difference_update(_name(user) for user in usernames)

    def in_trophy(self, username: str) -> bool:
        """Whether the API answers for ``username``."""
        with self._lock:
            return _name(username) in self._trophy

    def set_live(self, username: str, status: LiveStatus) -> None:
        """Set what ``get_live`` says about a model (Offline until set)."""
        with self._lock:
            self._live[_name(username)] = status

    def live(self, username: str) -> LiveStatus:
        """The model's ``get_live`` row."""
        with self._lock:
            return self._live.get(_name(username), LiveOffline())

    def random_online(self, username: str) -> LiveOnline:
        """A plausible Online row for the model, the same for the same seed and name.

        Drawn from the Affiliate room generator, so genders, shows, subjects and tags have
        the real feed's distributions.
        """
        rng = random.Random(f"{self._seed}:{_name(username)}:live")
        room = RoomFactory(wm="cbhours", today=_FOLLOWER_ANCHOR).make(rng)
        rank = max(1, int(60_000 / (room.num_users + 2) ** 0.85))
        return LiveOnline(
            gender=_LIVE_GENDERS[room.gender],
            rank=rank,
            grank=max(1, int(rank * 0.7)),
            viewers=room.num_users,
            followers=room.num_followers,
            current_show=room.current_show,
            room_subject=room.room_subject,
            tags=room.tags,
            is_new=room.is_new,
        )

    def seed_activity(
        self,
        username: str,
        start: date,
        end: date,
        *,
        gender: str | None = None,
        online_chance: float = 0.7,
    ) -> int:
        """Replace the model's history on UTC days ``start``..``end`` with generated sessions.

        Each day is on cam with probability ``online_chance``: one or two sessions of 30 min
        to 8 h (clipped at UTC midnight, so days stay independent), mostly ``_public`` with
        an occasional private, group or ticket stretch; viewers ramp up from 0 at the start.

        Args:
            username: The model (need not be in the trophy set).
            start: First UTC day, inclusive.
            end: Last UTC day, inclusive.
            gender: Segment gender code; from the live row when Online, else ``f``.
            online_chance: Probability that a day has any activity.

        Returns:
            How many segments the range now holds.
        """
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        name = _name(username)
        if gender is None:
            row = self.live(name)
            gender = _SEGMENT_GENDERS[row.gender] if isinstance(row, LiveOnline) else "f"
        base = random.Random(f"{self._seed}:{name}:base")
        followers, growth = int(base.lognormvariate(9.0, 1.2)), base.randint(0, 40)
        popularity = base.lognormvariate(2.5, 1.0)
        fresh: list[Segment] = []
        for offset in range((end - start).days + 1):
            day = start + timedelta(days=offset)
            rng = random.Random(f"{self._seed}:{name}:{day.isoformat()}")
            if rng.random() < online_chance:
                day_followers = max(0, followers + (day - _FOLLOWER_ANCHOR).days * growth)
                fresh.extend(_day_segments(rng, day, day_followers, popularity, gender))
        low, high = _utc_midnight(start), _utc_midnight(end + timedelta(days=1))
        with self._lock:
            kept = [s for s in self._activity.get(name, []) if not low <= s.at < high]
            self._activity[name] = sorted(kept + fresh, key=lambda s: s.at)
        return len(fresh)

    def set_activity(self, username: str, segments: Iterable[Segment]) -> None:
        """Replace the model's whole history with hand-made segments (any order).

        Raises:
            ValueError: A segment's ``at`` has no timezone.
        """
        stored = []
        for segment in segments:
            if segment.at.tzinfo is None:
                raise ValueError(f"segment time {segment.at} has no timezone")
            stored.append(msgspec.structs.replace(segment, at=segment.at.astimezone(UTC)))
        with self._lock:
            self._activity[_name(username)] = sorted(stored, key=lambda s: s.at)

    def segments(
        self, username: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[Segment]:
        """The model's segments with ``since <= at < until`` (aware datetimes), oldest first."""
        with self._lock:
            history = self._activity.get(_name(username), [])
            low = 0 if since is None else bisect.bisect_left(history, since, key=_at)
            high = len(history) if until is None else bisect.bisect_left(history, until, key=_at)
            return history[low:high]

    def months(self, username: str) -> list[str]:
        """``YYYY-MM`` (UTC) of every month with activity, newest first."""
        with self._lock:
            history = self._activity.get(_name(username), [])
            return sorted({f"{s.at:%Y-%m}" for s in history}, reverse=True)

    def stats(self) -> CbhoursStats:
        """A snapshot for the control routes."""
        with self._lock:
            online = [n for n, row in self._live.items() if isinstance(row, LiveOnline)]
            return CbhoursStats(
                seed=self._seed,
                trophy=sorted(self._trophy),
                online=sorted(online),
                segments={name: len(history) for name, history in sorted(self._activity.items())},
                rate_limit=self.rate_limit.view(),
            )


def _name(username: str) -> str:
    return username.strip().lower()


def _at(segment: Segment) -> datetime:
    return segment.at


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_segments(
    rng: random.Random, day: date, followers: int, popularity: float, gender: str
) -> list[Segment]:
    """One UTC day's sessions; overlapping sessions merge (one sample per instant)."""
    midnight = _utc_midnight(day)
    samples: dict[int, Segment] = {}
    for _ in range(2 if rng.random() < 0.25 else 1):
        first = rng.randrange(_SEGMENTS_PER_DAY)
        length = min(rng.randint(10, 160), _SEGMENTS_PER_DAY - first)
        show_from, show_to, show = length, length, "_public"
        if rng.random() < 0.3:
            show_from = rng.randrange(length)
            show_to = show_from + rng.randint(2, 10)
            show = rng.choices(_SHOW_TYPES, (8, 1, 1))[0]
        mean = popularity * rng.lognormvariate(0.0, 0.4)
        for i in range(length):
            viewers = int(mean * min(1.0, i / 5) * rng.lognormvariate(0.0, 0.25))
            rank = max(1, int(60_000 / (viewers + 2) ** 0.85 * rng.lognormvariate(0.0, 0.1)))
            samples[first + i] = Segment(
                at=midnight + timedelta(minutes=SEGMENT_MINUTES * (first + i)),
                type=show if show_from <= i < show_to else "_public",
                rank=rank,
                grank=max(1, int(rank * 0.7)),
                followers=followers + i // 10,
                viewers=viewers,
                gender=gender,
            )
    return [samples[index] for index in sorted(samples)]
