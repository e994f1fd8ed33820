"""The 2017 shape of a room, served by the legacy ``/affiliates/api/onlinerooms/`` endpoint.

Modelled on the real 2017 response (samples/affiliate_onlinerooms_LEGACY_2017_…json, FORMATS.md
§1.5): 24 keys in that response's order, no ``country`` and no ``slug``, ``recorded`` as the
*string* ``"false"``, ``block_from_countries``/``block_from_states`` as strings, links under
``/affiliates/in/``, images on ``roomimg.stream.highwebmedia.com``, ``s`` for trans, ``tags``
holding every hashtag of the subject (17 in one real object) and slashes escaped as ``\\/``
because the old site used PHP's ``json_encode`` defaults.
"""

from collections.abc import Sequence

import msgspec

from upstream_sim.rooms import Room, campaign_links, hashtags

LEGACY_LINK_BASE = "https://chaturbate.com/affiliates/in/"
_LEGACY_IMAGE = "https://roomimg.stream.highwebmedia.com/ri/{u}.jpg"


class LegacyRoom(msgspec.Struct, frozen=True, kw_only=True):
    """One room as the 2017 feed sent it; field order is the wire key order."""

    is_new: bool
    num_followers: int
    iframe_embed: str
    display_name: str
    tags: tuple[str, ...]
    recorded: str
    iframe_embed_revshare: str
    chat_room_url: str
    location: str
    block_from_states: str
    chat_room_url_revshare: str
    username: str
    spoken_languages: str
    image_url_360x270: str
    current_show: str
    birthday: str
    is_hd: bool
    block_from_countries: str
    seconds_online: int
    gender: str
    age: int | None
    num_users: int
    image_url: str
    room_subject: str


def to_legacy(room: Room, wm: str) -> LegacyRoom:
    """Convert a current room into the 2017 shape for campaign ``wm``."""
    rev, rev_iframe, link, iframe = campaign_links(LEGACY_LINK_BASE, room.username, wm)
    image = _LEGACY_IMAGE.format(u=room.username)
    return LegacyRoom(
        is_new=room.is_new,
        num_followers=room.num_followers,
        iframe_embed=iframe,
        display_name=room.display_name,
        tags=tuple(hashtags(room.room_subject)),
        recorded="false",
        iframe_embed_revshare=rev_iframe,
        chat_room_url=link,
        location=room.location,
        block_from_states="",
        chat_room_url_revshare=rev,
        username=room.username,
        spoken_languages=room.spoken_languages,
        image_url_360x270=image,
        current_show=room.current_show,
        birthday=room.birthday,
        is_hd=room.is_hd,
        block_from_countries="",
        seconds_online=room.seconds_online,
        gender="s" if room.gender == "t" else room.gender,
        age=room.age,
        num_users=room.num_users,
        image_url=image,
        room_subject=room.room_subject,
    )


def escape_slashes(json_bytes: bytes) -> bytes:
    r"""Escape ``/`` as ``\/`` the way PHP's ``json_encode`` did.

    Safe on any JSON text: ``/`` can only occur inside strings, where ``\/`` is a valid escape.
    """
    return json_bytes.replace(b"/", b"\\/")


def encode_legacy_rooms(rooms: Sequence[Room], wm: str) -> bytes:
    """Serialize rooms as the legacy endpoint's bare JSON array."""
    return escape_slashes(msgspec.json.encode([to_legacy(room, wm) for room in rooms]))
