"""What the simulated Events API holds: each account's stream, its tokens and the limits.

A stream is append-only and keeps every event (no retention window), so
:meth:`EventsState.events` is exactly what was sent to the room and a test can compare it with
what a client stored. Ids are ``<milliseconds>-<sequence>``: the wall clock in milliseconds,
never going back within a stream, and a sequence that counts events appended in the same
millisecond, so ids are unique and increase in the order the events were appended (compare
them as the number pair, not as text).

Long polls wait on an ``asyncio.Event`` of the server's loop, registered with
:meth:`EventsState.waiting`; an append (from any thread: tests steer from their own) wakes the
waiters of its stream with ``loop.call_soon_threadsafe``. One lock guards everything.

Listeners (:meth:`EventsState.add_listener`) hear of every append after the lock is released:
``SimulatorState`` connects the site (follow and unfollow events appended by a test change the
account's followers list) and the Stats API (tips, broadcasts, viewers).
"""

import asyncio
import bisect
import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Annotated, Any

import msgspec

from upstream_sim.events import objects
from upstream_sim.tokens import TokenBook

DEFAULT_MAX_EVENTS_PER_RESPONSE = 100
DEFAULT_MAX_REQUESTS_PER_MINUTE = 2000
"""The ``cb-events`` client's limiter (FORMATS.md §6.1)."""
RATE_WINDOW_SECONDS = 60.0
_EXPLICIT_CROWD = 200

EventKey = tuple[int, int]
Listener = Callable[[str, Sequence["Event"], bool], None]
"""Called with the account, the appended events and whether the site's lists caused them."""


class Event(msgspec.Struct, frozen=True):
    """One event in the wire key order of the docs (``method``, ``id``, ``object``)."""

    method: str
    id: str
    object: dict[str, Any]


class EventSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An event a test asks for: the method and any part of its object (the rest is made up)."""

    method: Annotated[str, msgspec.Meta(min_length=1)]
    object: dict[str, Any] = {}


class EventsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of the simulated Events API."""

    max_events_per_response: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = (
        DEFAULT_MAX_EVENTS_PER_RESPONSE
    )
    max_requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_MAX_REQUESTS_PER_MINUTE


def parse_event_id(text: str) -> EventKey:
    """``"1733140000000-3"`` as ``(1733140000000, 3)``.

    Raises:
        ValueError: Not two non-negative integers joined by ``-``.
    """
    millis, sep, sequence = text.partition("-")
    if not (sep and millis.isdigit() and sequence.isdigit()):
        raise ValueError(f"not an event id: {text!r}")
    return int(millis), int(sequence)


@cache
def _crowd(seed: int, size: int) -> tuple[str, ...]:
    return tuple(objects.crowd(seed, size))


class _Stream:
    """One account's events, their sort keys and encoded forms, waiters and request times."""

    __slots__ = ("encoded", "events", "keys", "requests", "waiters")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.keys: list[EventKey] = []
        self.encoded: list[msgspec.Raw] = []
        self.waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.requests: deque[float] = deque()


class EventsState:
    """Every account's event stream, the tokens the API accepts and its limits."""

    def __init__(self, settings: EventsSettings | None = None, *, seed: int = 0) -> None:
        """Create empty streams; every account accepts its default token.

        Args:
            settings: Limits; the documented defaults when None.
            seed: Seed of made-up event parts (people, tips, messages).
        """
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._listeners: list[Listener] = []
        self._settings = settings or EventsSettings()
        self._seed = seed
        self.tokens = TokenBook()

    @property
    def settings(self) -> EventsSettings:
        """The current limits."""
        with self._lock:
            return self._settings

    def configure(self, settings: EventsSettings) -> None:
        """Replace the limits (``msgspec.structs.replace`` the current ones)."""
        with self._lock:
            self._settings = settings

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every append (see the module docstring)."""
        with self._lock:
            self._listeners.append(listener)

    def reset(self, *, seed: int = 0) -> None:
        """Forget every event, request count and token; limits back to the defaults.

        Waiting long polls wake up and answer with no events.
        """
        with self._lock:
            streams = list(self._streams.values())
            self._streams = {}
            self._settings = EventsSettings()
            self._seed = seed
        self.tokens.reset()
        for stream in streams:
            _wake(stream.waiters)

    def append(self, username: str, specs: Iterable[EventSpec | Mapping[str, Any]]) -> list[Event]:
        """Append events to an account's stream, their objects completed by :func:`objects.fill`.

        Follow and unfollow events change the site's followers list too (through the listener
        ``SimulatorState`` connects), so the list and the stream agree.

        Args:
            username: The broadcaster (the stream's account).
            specs: ``EventSpec`` or dicts with ``method`` and optional ``object``.

        Returns:
            The appended events, ids filled in.
        """
        wanted = [s if isinstance(s, EventSpec) else msgspec.convert(s, EventSpec) for s in specs]
        name = username.lower()
        with self._lock:
            stream = self._streams.get(name)
            rng = random.Random(f"{self._seed}:{name}:{len(stream.events) if stream else 0}")
            people = _crowd(self._seed, _EXPLICIT_CROWD)
        made = [
            (
                spec.method,
                objects.fill(spec.method, spec.object, broadcaster=name, rng=rng, people=people),
            )
            for spec in wanted
        ]
        return self._record(name, made, from_site=False)

    def burst(
        self, username: str, count: int, *, methods: Sequence[str] = (), seed: int = 0
    ) -> list[Event]:
        """Append ``count`` generated events, the same ones for the same seed.

        Args:
            username: The broadcaster.
            count: How many events.
            methods: Methods to draw from evenly; the busy-room mix (:data:`objects.BURST_MIX`)
                when empty.
            seed: Seed of the people, methods, tips and messages.
        """
        name = username.lower()
        rng = random.Random(f"burst:{seed}:{name}")
        people = _crowd(seed, max(20, min(1000, count // 10)))
        made = [
            (method, objects.fill(method, {}, broadcaster=name, rng=rng, people=people))
            for method in objects.burst_methods(rng, count, methods)
        ]
        return self._record(name, made, from_site=False)

    def broadcast_start(self, username: str) -> Event:
        """Append a ``broadcastStart`` event."""
        return self.append(username, [EventSpec(method="broadcastStart")])[0]

    def broadcast_stop(self, username: str) -> Event:
        """Append a ``broadcastStop`` event."""
        return self.append(username, [EventSpec(method="broadcastStop")])[0]

    def followers_changed(
        self, username: str, added: Sequence[str], removed: Sequence[str]
    ) -> list[Event]:
        """Append the follow and unfollow events of a change to the site's followers list.

        Called by the site (through ``SimulatorState``); it does not change the list again.
        """
        name = username.lower()
        changes = [("follow", user) for user in added] + [("unfollow", user) for user in removed]
        rng = random.Random(f"{self._seed}:{name}:site")
        made = [
            (
                method,
                objects.fill(
                    method, {"user": {"username": user}}, broadcaster=name, rng=rng, people=()
                ),
            )
            for method, user in changes
        ]
        return self._record(name, made, from_site=True)

    def events(self, username: str) -> list[Event]:
        """Every event appended to the account's stream, oldest first."""
        with self._lock:
            stream = self._streams.get(username.lower())
            return list(stream.events) if stream else []

    def accounts(self) -> dict[str, int]:
        """Events per account with a stream."""
        with self._lock:
            return {name: len(stream.events) for name, stream in self._streams.items()}

    def waiting_count(self, username: str) -> int:
        """How many long polls of the account are waiting now (tests wait for one to hold)."""
        with self._lock:
            stream = self._streams.get(username.lower())
            return len(stream.waiters) if stream else 0

    def after(
        self, username: str, position: EventKey | None, limit: int
    ) -> tuple[list[msgspec.Raw], str | None]:
        """Up to ``limit`` encoded events after ``position`` (from the oldest when None).

        Returns:
            The events as encoded JSON, and the id of the last one (None when there are none).
        """
        with self._lock:
            stream = self._streams.get(username.lower())
            if stream is None:
                return [], None
            start = 0 if position is None else bisect.bisect_right(stream.keys, position)
            stop = min(len(stream.events), start + limit)
            if start >= stop:
                return [], None
            return stream.encoded[start:stop], stream.events[stop - 1].id

    def admit(self, username: str, now: float | None = None) -> int | None:
        """Count one API request against the account's per-minute limit.

        Returns:
            None when admitted, else the whole seconds until a request would be (``Retry-After``).
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            stream = self._stream(username.lower())
            times = stream.requests
            while times and now - times[0] >= RATE_WINDOW_SECONDS:
                times.popleft()
            if len(times) >= self._settings.max_requests_per_minute:
                return max(1, int(RATE_WINDOW_SECONDS - (now - times[0]) + 0.999))
            times.append(now)
            return None

    @contextmanager
    def waiting(self, username: str, wake: asyncio.Event) -> Iterator[None]:
        """Register ``wake`` (of the running loop) to be set when the stream grows."""
        waiter = (asyncio.get_running_loop(), wake)
        with self._lock:
            stream = self._stream(username.lower())
            stream.waiters.add(waiter)
        try:
            yield
        finally:
            with self._lock:
                stream.waiters.discard(waiter)

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream()
        return stream

    def _record(
        self, name: str, made: Sequence[tuple[str, dict[str, Any]]], *, from_site: bool
    ) -> list[Event]:
        if not made:
            return []
        # Encoded around the id beforehand: under the lock (which long polls take too) only
        # the ids are joined in, so a big burst does not stall the server's loop.
        encode = msgspec.json.encode
        parts = [
            (method, obj, b'{"method":' + encode(method) + b',"id":"', b'","object":' + encode(obj))
            for method, obj in made
        ]
        millis = time.time_ns() // 1_000_000
        with self._lock:
            stream = self._stream(name)
            last_millis, last_sequence = stream.keys[-1] if stream.keys else (0, -1)
            if millis <= last_millis:
                millis, sequence = last_millis, last_sequence + 1
            else:
                sequence = 0
            added = []
            for method, obj, head, tail in parts:
                event_id = f"{millis}-{sequence}"
                event = Event(method=method, id=event_id, object=obj)
                stream.events.append(event)
                stream.keys.append((millis, sequence))
                stream.encoded.append(msgspec.Raw(head + event_id.encode() + tail + b"}"))
                added.append(event)
                sequence += 1
            waiters = list(stream.waiters)
            listeners = list(self._listeners)
        _wake(waiters)
        for listener in listeners:
            listener(name, added, from_site)
        return added


def _wake(waiters: Iterable[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
    for loop, wake in waiters:
        # RuntimeError: the loop closed (the server stopped) while the poll was waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)
