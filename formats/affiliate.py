"""The Affiliate API's online-rooms feed (FORMATS.md §1): one page decoded into room records.

Each page is decoded strictly: a wrong type fails that page, naming the room and the field.
Fields are cleaned once, here (the writers trust the record, ``storage/records.py``): usernames
and tags lower-cased, the legacy gender ``s`` as ``t``, empty strings as missing values. The
spider is ``spiders/affiliate.py``.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from roomwatch.errors import PageError
from roomwatch.text import clean_json
from storage.records import AffiliateRoom, gender_code


class _WireRoom(msgspec.Struct):
    """A room as the feed sends it; unknown fields are allowed and kept in the raw object."""

    username: str
    gender: str
    current_show: str
    num_users: int
    num_followers: int
    tags: list[str] = msgspec.field(default_factory=list)
    location: str = ""
    room_subject: str = ""
    is_new: bool = False
    country: str = ""
    spoken_languages: str = ""
    display_name: str = ""
    birthday: str = ""
    is_hd: bool | None = None
    age: int | None = None
    seconds_online: int | None = None
    image_url: str | None = None
    image_url_360x270: str | None = None
    chat_room_url_revshare: str | None = None
    iframe_embed_revshare: str | None = None
    chat_room_url: str | None = None
    iframe_embed: str | None = None
    slug: str | None = None


class _Envelope(msgspec.Struct):
    results: list[msgspec.Raw]
    count: int


_envelope = msgspec.json.Decoder(_Envelope | list[msgspec.Raw])
_room = msgspec.json.Decoder(_WireRoom)


def decode_page(body: bytes) -> tuple[list[AffiliateRoom], int | None]:
    """Decodes one page: the rooms, and ``count`` (None for the legacy bare array).

    Text a room cannot be stored with (NUL, lone surrogates) is dropped first, from the
    decoded strings and the kept raw object alike: one room's subject must not fail its page.

    Raises:
        PageError: naming the room and field that do not match the format.
    """
    try:
        envelope = _envelope.decode(clean_json(body))
    except msgspec.ValidationError as exc:
        raise PageError(f"envelope: {_where(exc)}") from None
    except msgspec.DecodeError as exc:
        raise PageError(f"not JSON ({exc})") from None
    raws, count = (
        (envelope.results, envelope.count) if isinstance(envelope, _Envelope) else (envelope, None)
    )
    rooms = []
    for index, raw in enumerate(raws):
        try:
            wire = _room.decode(raw)
            rooms.append(_to_record(wire, bytes(raw)))
        except (msgspec.ValidationError, ValueError) as exc:
            raise PageError(f"room {index}: {_where(exc)}") from None
    return rooms, count


def _where(exc: Exception) -> str:
    """``Expected `int`, got `str` - at `$.num_users``` as ``num_users: expected `int`...``."""
    message, sep, path = str(exc).partition(" - at `$.")
    if not sep:
        return message
    return f"{path.rstrip('`')}: {message[0].lower()}{message[1:]}"


# Fields the feed leaves empty ("") to mean "not set": None in the record.
_EMPTY_MEANS_UNSET = ("location", "country", "spoken_languages", "display_name")


def _to_record(wire: _WireRoom, raw: bytes) -> AffiliateRoom:
    """The record of one room: every wire field by its name, the ones needing it cleaned."""
    if not wire.username:
        raise ValueError("username: expected a non-empty string")
    try:
        birthday = dt.date.fromisoformat(wire.birthday) if wire.birthday else None
    except ValueError:
        raise ValueError(f"birthday: expected YYYY-MM-DD or empty, got {wire.birthday!r}") from None
    fields = msgspec.structs.asdict(wire)
    for name in _EMPTY_MEANS_UNSET:
        fields[name] = fields[name] or None
    fields.update(
        username=wire.username.lower(),
        gender=gender_code(wire.gender),
        tags=[tag.lower() for tag in wire.tags],
        birthday=birthday,
    )
    return AffiliateRoom(**fields, raw=raw)
