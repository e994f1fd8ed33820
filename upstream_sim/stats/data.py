"""What the simulated Stats API knows about each account, and how its figures are made.

The answer (FORMATS.md §6.2) mixes three things, per field:

1. an **override** a test set (``StatsState.override``, ``PUT /_sim/stats/{username}``), which
   always wins: that is how a test makes ``num_followers`` stale or wrong on purpose;
2. the **site's world**: ``num_followers`` is the length of the account's followers list;
3. the account's **Events API stream** (``observe`` hears every appended event): tips add to
   ``token_balance`` and, for an hour, to ``tips_in_last_hour`` (tokens, a guess: the docs do
   not say whether it counts tips or tokens); ``broadcastStart`` sets ``last_broadcast`` and
   starts ``time_online`` (whole minutes); ``broadcastStop`` sets ``time_online`` to ``-1``;
   ``userEnter``/``userLeave`` keep the room's audience, whose size is ``num_viewers`` and
   ``num_registered_viewers`` (events only name registered users) and whose members with
   ``hasTokens`` are ``num_tokened_viewers``; the audience empties when a broadcast starts or
   stops. ``satisfaction_score`` is the percentage of up votes (0 without votes).

``-1`` stands for "not broadcasting / unknown" in ``last_broadcast`` (never broadcast) and
``time_online`` (not on cam now), as the docs say. The real API refreshes every 5 minutes; the
simulator answers with the figures of the moment.
"""

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from upstream_sim.tokens import TokenBook

TIPS_WINDOW_SECONDS = 3600.0
NOT_BROADCASTING = -1


class StatsDocument(msgspec.Struct, frozen=True, kw_only=True):
    """The Stats API object, fields in the documented order."""

    username: str
    token_balance: int
    tips_in_last_hour: int
    votes_up: int
    votes_down: int
    satisfaction_score: int
    last_broadcast: str | int
    time_online: int
    num_followers: int
    num_viewers: int
    num_registered_viewers: int
    num_tokened_viewers: int


FIELDS = tuple(f for f in StatsDocument.__struct_fields__ if f != "username")


@dataclass(slots=True)
class _Room:
    """What the events said about one account's room."""

    token_balance: int = 0
    tips: deque[tuple[float, int]] = field(default_factory=deque)
    live_since: datetime | None = None
    last_broadcast: datetime | None = None
    audience: dict[str, bool] = field(default_factory=dict)


class StatsState:
    """Overrides, event-derived figures and tokens of the simulated Stats API; thread-safe."""

    def __init__(self) -> None:
        """No overrides, no events seen; every account accepts its default token."""
        self._lock = threading.Lock()
        self._rooms: dict[str, _Room] = {}
        self._overrides: dict[str, dict[str, Any]] = {}
        self.tokens = TokenBook()

    def reset(self) -> None:
        """Forget overrides, what the events said, and tokens."""
        with self._lock:
            self._rooms.clear()
            self._overrides.clear()
        self.tokens.reset()

    def override(self, username: str, **fields: Any) -> None:
        """Set fields of the account's answer; a field set to None goes back to its figure.

        Raises:
            ValueError: A name that is not a Stats API field (``username`` included).
        """
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"not Stats API fields: {', '.join(sorted(unknown))}")
        with self._lock:
            current = self._overrides.setdefault(username.lower(), {})
            for name, value in fields.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value

    def overrides(self, username: str) -> dict[str, Any]:
        """The account's overridden fields now."""
        with self._lock:
            return dict(self._overrides.get(username.lower(), {}))

    def observe(self, username: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Update the account's figures from events appended to its stream.

        Args:
            username: The account.
            events: ``(method, object)`` of each event, oldest first.
        """
        now, wall = time.monotonic(), datetime.now(UTC)
        with self._lock:
            room = self._rooms.setdefault(username.lower(), _Room())
            for method, obj in events:
                _apply(room, method, obj, now, wall)

    def document(
        self, username: str, *, num_followers: int, now: float | None = None
    ) -> StatsDocument:
        """The account's answer now.

        Args:
            username: The account, as the site spells it.
            num_followers: Its followers list's length (the site's).
            now: ``time.monotonic()``, for the tips window; taken here when None.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            room = self._rooms.get(username.lower()) or _Room()
            while room.tips and now - room.tips[0][0] >= TIPS_WINDOW_SECONDS:
                room.tips.popleft()
            overrides = dict(self._overrides.get(username.lower(), {}))
            tips = sum(tokens for _, tokens in room.tips)
            audience = list(room.audience.values())
            live_since, last = room.live_since, room.last_broadcast
            balance = room.token_balance
        figures: dict[str, Any] = {
            "token_balance": balance,
            "tips_in_last_hour": tips,
            "votes_up": 0,
            "votes_down": 0,
            "last_broadcast": last.isoformat() if last else NOT_BROADCASTING,
            "time_online": (
                int((datetime.now(UTC) - live_since).total_seconds() // 60)
                if live_since
                else NOT_BROADCASTING
            ),
            "num_followers": num_followers,
            "num_viewers": len(audience),
            "num_registered_viewers": len(audience),
            "num_tokened_viewers": sum(audience),
        }
        figures.update(overrides)
        votes = figures["votes_up"] + figures["votes_down"]
        satisfaction = round(100 * figures["votes_up"] / votes) if votes else 0
        figures.setdefault("satisfaction_score", satisfaction)
        return StatsDocument(username=username, **figures)


def _apply(room: _Room, method: str, obj: Mapping[str, Any], now: float, wall: datetime) -> None:
    user = obj.get("user")
    user = user if isinstance(user, Mapping) else {}
    if method == "tip":
        tip = obj.get("tip")
        tokens = tip.get("tokens") if isinstance(tip, Mapping) else 0
        tokens = tokens if isinstance(tokens, int) else 0
        room.token_balance += tokens
        room.tips.append((now, tokens))
    elif method == "broadcastStart":
        room.live_since = room.last_broadcast = wall
        room.audience.clear()
    elif method == "broadcastStop":
        room.live_since = None
        room.audience.clear()
    elif method == "userEnter" and user.get("username"):
        room.audience[str(user["username"])] = bool(user.get("hasTokens"))
    elif method == "userLeave" and user.get("username"):
        room.audience.pop(str(user["username"]), None)
