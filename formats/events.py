"""The owner's Events API (FORMATS.md §6.1): one long-poll answer decoded into event records.

Clients that follow the API's documentation ignore what they do not know, and so does this
decoder: an unknown field is kept in ``raw`` only; an event of an unknown ``method`` is stored
with its method, id, time and ``raw`` (and whatever of the known fields it carries in their
known shape). A known method without the part it is about (a ``tip`` without ``tip``, a
``follow`` without ``user``), a field of the wrong type or an id that is not
``<milliseconds>-<sequence>`` fails the whole answer with a :class:`DecodeError` naming the
event and the field: the stream must not move past an event it could not read.

Cleaning happens here, once (the writers trust the record): usernames lower case, the gender
as a one-letter code, empty strings as None, ``occurred_at`` read from the id's milliseconds
(UTC). With ``store_message_text`` off, chat and private message texts and tip notes are
dropped from the record and from ``raw`` alike. The spider is ``spiders/room_events.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple, get_args

import msgspec

from formats.cbhours import where
from roomwatch.errors import DecodeError
from roomwatch.text import clean_json
from storage.records import RoomEvent, RoomMethod, gender_code


class _User(msgspec.Struct):
    username: str
    inFanclub: bool | None = None
    hasTokens: bool | None = None
    isMod: bool | None = None
    recentTips: str | None = None
    gender: str | None = None
    subgender: str | None = None


class _Tip(msgspec.Struct):
    tokens: int
    isAnon: bool | None = None
    message: str | None = None


class _Message(msgspec.Struct):
    message: str | None = None
    fromUser: str | None = None
    toUser: str | None = None


class _Media(msgspec.Struct):
    id: int
    type: str | None = None
    name: str | None = None
    tokens: int | None = None


class _Object(msgspec.Struct):
    broadcaster: str | None = None
    user: _User | None = None
    tip: _Tip | None = None
    message: _Message | None = None
    media: _Media | None = None
    subject: str | None = None


class _Event(msgspec.Struct):
    method: str
    id: str
    object: _Object = msgspec.field(default_factory=_Object)
    broadcaster: str | None = None  # mhc-control-panel reads it here as well (§6.1)


class _Bare(msgspec.Struct):
    """What every event has, whatever its method: read when an unknown method's object does
    not have the known parts' shapes."""

    method: str
    id: str


class _Answer(msgspec.Struct):
    events: list[msgspec.Raw]
    nextUrl: str


_answer = msgspec.json.Decoder(_Answer)
_event = msgspec.json.Decoder(_Event)
_bare = msgspec.json.Decoder(_Bare)

METHODS: tuple[str, ...] = get_args(RoomMethod)
"""The documented methods (FORMATS.md §6.1)."""

# The part of ``object`` each documented method is about; an event without it is refused.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "userEnter": ("user",),
    "userLeave": ("user",),
    "follow": ("user",),
    "unfollow": ("user",),
    "fanclubJoin": ("user",),
    "chatMessage": ("user", "message"),
    "privateMessage": ("message",),
    "tip": ("user", "tip"),
    "roomSubjectChange": ("subject",),
    "mediaPurchase": ("user", "media"),
}

# The texts ``store_message_text`` keeps or drops: object.message.message, object.tip.message.
_TEXT_PARTS = ("message", "tip")

_ID = re.compile(r"(\d{1,15})-(\d{1,18})")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class EventsAnswer(NamedTuple):
    """One answer: its events in stream order, and the URL to request next (it holds the
    position and the token: a secret)."""

    events: list[RoomEvent]
    next_url: str


def event_time(event_id: str) -> dt.datetime:
    """The time an event id (``<milliseconds>-<sequence>``) stands for, in UTC.

    Raises:
        ValueError: the id has another form.
    """
    match = _ID.fullmatch(event_id)
    if match is None:
        raise ValueError(f"expected <milliseconds>-<sequence>, got {event_id!r}")
    return _EPOCH + dt.timedelta(milliseconds=int(match[1]))


def decode_events(body: bytes, *, store_message_text: bool) -> EventsAnswer:
    """Decodes one Events API answer (rules in the module docstring).

    Raises:
        DecodeError: naming the event (``events[2]``) and its field that do not match.
    """
    try:
        answer = _answer.decode(clean_json(body))
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if isinstance(exc, msgspec.ValidationError):
            raise DecodeError(where(exc)) from None
        raise DecodeError(f"body: not JSON ({exc})") from None
    events = []
    for index, raw in enumerate(answer.events):
        try:
            events.append(_record(bytes(raw), store_message_text))
        except msgspec.ValidationError as exc:
            raise DecodeError(where(exc, f"events[{index}]")) from None
        except ValueError as exc:  # ours: "field: what is wrong"
            raise DecodeError(f"events[{index}].{exc}") from None
    return EventsAnswer(events, answer.nextUrl)


def _record(raw: bytes, store_message_text: bool) -> RoomEvent:
    try:
        event = _event.decode(raw)
    except msgspec.ValidationError:
        bare = _bare.decode(raw)  # the id and method at least, or the error naming them
        if bare.method in _REQUIRED or bare.method in METHODS:
            raise
        event = _Event(method=bare.method, id=bare.id)
    try:
        occurred_at = event_time(event.id)
    except ValueError as exc:
        raise ValueError(f"id: {exc}") from None
    o = event.object
    for part in _REQUIRED.get(event.method, ()):
        if getattr(o, part) is None:
            raise ValueError(f"object.{part}: missing for {event.method}")
    user, tip, media, message = o.user, o.tip, o.media, o.message
    from_user = _name(message.fromUser) if message else None
    username = from_user if event.method == "privateMessage" and from_user else None
    if username is None and user is not None:
        username = _name(user.username)
    text = None
    if store_message_text:
        text = (message.message if message else None) or (tip.message if tip else None) or None
    elif b'"message"' in raw:  # also an unknown method's, whatever its shape
        raw = _without_texts(raw)
    return RoomEvent(
        event_id=event.id,
        occurred_at=occurred_at,
        method=event.method,
        username=username,
        broadcaster=_name(o.broadcaster or event.broadcaster),
        tokens=tip.tokens if tip else media.tokens if media else None,
        is_anon=tip.isAnon if tip else None,
        in_fanclub=user.inFanclub if user else None,
        has_tokens=user.hasTokens if user else None,
        is_mod=user.isMod if user else None,
        recent_tips=(user.recentTips or None) if user else None,
        gender=(gender_code(user.gender) or None) if user and user.gender else None,
        subgender=(user.subgender or None) if user else None,
        message=text,
        subject=o.subject,
        media_id=media.id if media else None,
        media_type=(media.type or None) if media else None,
        media_name=(media.name or None) if media else None,
        from_user=from_user,
        to_user=_name(message.toUser) if message else None,
        raw=raw,
    )


def _name(value: str | None) -> str | None:
    return value.lower() if value else None


def _without_texts(raw: bytes) -> bytes:
    """The event as received minus its message texts: ``object.message.message`` and
    ``object.tip.message`` (``object.message`` itself when it is text)."""
    event: dict[str, Any] = msgspec.json.decode(raw)
    parts = event.get("object")
    if isinstance(parts, dict):
        if isinstance(parts.get("message"), str):
            del parts["message"]
        for name in _TEXT_PARTS:
            part = parts.get(name)
            if isinstance(part, dict):
                part.pop("message", None)
    return msgspec.json.encode(event)
