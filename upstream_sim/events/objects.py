"""Event objects of the simulated Events API: realistic defaults and generated bursts.

The ``object`` of an event holds only what applies to its method (FORMATS.md §6.1):
``broadcaster`` always; ``user`` on follow, unfollow, userEnter, userLeave, fanclubJoin, tip,
chatMessage, privateMessage and mediaPurchase; ``tip``, ``message``, ``media`` or ``subject``
on their methods. A test gives any part of it; :func:`fill` completes the rest with plausible
values, and keeps keys it does not know (a client must ignore them).

Generated events draw their people from a crowd of usernames made by the Affiliate room
generator, so the same people enter, chat, tip and leave, each with the same flags on every
event (drawn from the name); everything else comes from one ``random.Random``, so the same
seed gives the same names, tokens and messages.
"""

import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from upstream_sim.rooms import RoomFactory

METHODS = (
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
)
USER_METHODS = frozenset(
    {
        "follow",
        "unfollow",
        "userEnter",
        "userLeave",
        "fanclubJoin",
        "tip",
        "chatMessage",
        "privateMessage",
        "mediaPurchase",
    }
)
# A busy room's mix when a burst names no methods (a guess: chat dominates, follows are rare).
BURST_MIX: dict[str, int] = {
    "chatMessage": 40,
    "userEnter": 20,
    "userLeave": 18,
    "tip": 12,
    "follow": 4,
    "privateMessage": 2,
    "unfollow": 1,
    "fanclubJoin": 1,
    "mediaPurchase": 1,
    "roomSubjectChange": 1,
}
_RECENT_TIPS = ("none", "none", "none", "few", "some", "lots", "tons")
_GENDERS = ("m", "m", "m", "m", "f", "t", "c")
_TIP_SIZES = (1, 5, 10, 11, 20, 25, 50, 100, 111, 200, 500, 1000)
_TIP_WEIGHTS = (10, 8, 14, 6, 8, 14, 10, 10, 3, 4, 2, 1)
_CHAT = (
    "hi",
    "hello everyone",
    "you look amazing tonight",
    "what is the goal?",
    "lol",
    ":)",
    "how are you?",
    "brb",
    "love the music",
    "pvt later?",
)
_COLORS = ("#494949", "#DC5500", "#1E5CFB", "#804baa", "#090")


def crowd(seed: int, size: int) -> list[str]:
    """``size`` distinct usernames, the same for the same seed."""
    rng = random.Random(f"crowd:{seed}")
    factory = RoomFactory(wm="events")
    return [factory.make(rng).username for _ in range(size)]


def default_user(username: str) -> dict[str, Any]:
    """A ``user`` object for ``username`` with plausible flags, the same on every event."""
    return dict(_person(username))


@lru_cache(maxsize=65_536)
def _person(username: str) -> tuple[tuple[str, Any], ...]:
    rng = random.Random(f"person:{username}")
    gender = rng.choice(_GENDERS)
    return (
        ("username", username),
        ("inFanclub", rng.random() < 0.05),
        ("hasTokens", rng.random() < 0.6),
        ("isMod", rng.random() < 0.02),
        ("recentTips", rng.choice(_RECENT_TIPS)),
        ("gender", gender),
        ("subgender", rng.choice(("tf", "tm", "tn")) if gender == "t" else ""),
    )


def fill(
    method: str,
    given: Mapping[str, Any],
    *,
    broadcaster: str,
    rng: random.Random,
    people: Sequence[str],
) -> dict[str, Any]:
    """The complete ``object`` of a ``method`` event: ``given`` parts win, the rest is made up.

    Args:
        method: The event's method (unknown ones get ``broadcaster`` and ``given`` only).
        given: What the test said; nested parts (``user``, ``tip``...) are merged key by key.
        broadcaster: The room's username.
        rng: Source of every made-up value.
        people: Usernames to draw a missing ``user.username`` from.
    """
    filled: dict[str, Any] = {"broadcaster": given.get("broadcaster", broadcaster)}
    if method == "tip":
        tokens = rng.choices(_TIP_SIZES, _TIP_WEIGHTS)[0]
        note = rng.choice(("", "", "", "thank you", "for the goal"))
        filled["tip"] = _merged({"tokens": tokens, "isAnon": False, "message": note}, given, "tip")
    if method in ("chatMessage", "privateMessage"):
        message = {
            "color": rng.choice(_COLORS),
            "bgColor": None,
            "message": rng.choice(_CHAT),
            "font": "default",
        }
        filled["message"] = _merged(message, given, "message")
    if method == "mediaPurchase":
        kind = rng.choice(("photos", "video"))
        media = {
            "id": rng.randint(1000, 999_999),
            "type": kind,
            "name": f"{'set' if kind == 'photos' else 'clip'} {rng.randint(1, 60)}",
            "tokens": rng.choice((25, 50, 100, 200)),
        }
        filled["media"] = _merged(media, given, "media")
    if method == "roomSubjectChange":
        filled["subject"] = given.get("subject", f"goal: {rng.randint(100, 2000)} tokens #new")
    if method in USER_METHODS:
        given_user = given.get("user")
        name = given_user.get("username") if isinstance(given_user, Mapping) else None
        name = name or (rng.choice(people) if people else f"user{rng.randint(1, 99_999)}")
        filled["user"] = _merged(default_user(name), given, "user")
        if method == "privateMessage":
            filled["message"].setdefault("fromUser", name)
            filled["message"].setdefault("toUser", broadcaster)
    for key, value in given.items():
        filled.setdefault(key, value)
    return filled


def burst_methods(rng: random.Random, count: int, methods: Sequence[str]) -> list[str]:
    """``count`` methods drawn from ``methods`` (evenly), or from :data:`BURST_MIX` if empty."""
    if methods:
        return [rng.choice(methods) for _ in range(count)]
    return rng.choices(list(BURST_MIX), list(BURST_MIX.values()), k=count)


def _merged(defaults: dict[str, Any], given: Mapping[str, Any], key: str) -> dict[str, Any]:
    part = given.get(key)
    return {**defaults, **part} if isinstance(part, Mapping) else defaults
