"""Pure parsers of the followed-cams lists: the room-list JSON, the rendered page, counts, paging.

Used by the ``followed_cams`` spider, the HTML import (CLI and API) and the tests alike; they
live here rather than in ``spiders/`` because the control API may not import Scrapy code. The
formats are FORMATS.md §3.4-3.6:

* the JSON of ``/api/ts/roomlist/room-list/?follow=true&offline=...`` (§3.6): only rows with
  ``is_following`` true count. An expired session silently gets the anonymous public list, so
  rows of which none is followed mean "not logged in" (livestreamlist's guard);
* the rendered page: cards of the current site (``[data-testid=room-card]`` with ``data-room``)
  or of the old site (``ul.list > li.room_list_room``, offline rooms' ``li.cams`` reading
  ``offline``), skipping the header dropdown, "Recommended For You" and "Other Featured Cams";
  a saved room page only has the dropdown, whose online section (up to the recommended header)
  is read then;
* the header's ``span.followed_counts`` "(online/total)" and the ``ul.paging`` page links.
"""

from __future__ import annotations

import re

import msgspec
from parsel import Selector

from formats import numbers
from formats.markup import name_of
from formats.page_links import page_number
from formats.site import LOGGED_IN_SELECTOR
from roomwatch.errors import RoomListError
from roomwatch.text import clean_json, clean_text
from storage.records import RoomObservation, gender_code

ANONYMOUS_TOTAL = 500
"""A "followed" answer with no followed row and more rooms than this is the public list."""

_COUNTS = re.compile(r"\(\s*([0-9,]+)\s*/\s*([0-9,]+)\s*\)", re.ASCII)
_PAGE = re.compile(r"[?&]page=([0-9]+)", re.ASCII)
_VIEWERS = re.compile(r"([0-9,]+)\s*viewers?", re.IGNORECASE | re.ASCII)
_GENDER = re.compile(r"\bgender([fmcst])\b")
_HIDDEN_LISTS = (
    "ancestor::*[contains(@class, 'followedDropdown') or contains(@class, 'followRecommendations')"
    " or @data-testid = 'fallback-room-list-container']"
)
_CARDS = (
    "//*[(contains(concat(' ', normalize-space(@class), ' '), ' room_list_room ')"
    f" or @data-testid = 'room-card') and not({_HIDDEN_LISTS})]"
)
_RECOMMENDED_HEADER = "followRecommendedHeader"


class RoomListPage(msgspec.Struct, frozen=True, kw_only=True):
    """One answer of the room-list API.

    Attributes:
        rows: the followed rooms on it (``is_following`` true), as observations.
        returned: how many rooms it held in all.
        total_count: how many rooms the whole list has, by the site's count.
        anonymous: the public list came back instead of the followed one (session expired).
    """

    rows: list[RoomObservation]
    returned: int
    total_count: int
    anonymous: bool


class FollowedPage(msgspec.Struct, frozen=True, kw_only=True):
    """What a rendered (or saved) followed-cams page shows.

    Attributes:
        rows: the rooms listed, in page order, each once.
        counts: the header's (online, total), when shown.
        page: this page's number (1 when there is no paging).
        last_page: the highest page number linked.
        logged_in: the header shows a logged-in user.
    """

    rows: list[RoomObservation]
    counts: tuple[int, int] | None
    page: int
    last_page: int
    logged_in: bool


class _WireRoom(msgspec.Struct):
    username: str
    current_show: str = ""
    num_users: int | None = None
    num_followers: int | None = None
    room_subject: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    gender: str = ""
    display_age: int | None = None
    location: str = ""
    country: str = ""
    img: str = ""
    is_following: bool = False


class _Envelope(msgspec.Struct):
    rooms: list[_WireRoom]
    total_count: int


_decode_envelope = msgspec.json.Decoder(_Envelope)


def decode_room_list(body: bytes, *, offline: bool | None) -> RoomListPage:
    """Decodes one room-list answer.

    Args:
        body: the JSON as received.
        offline: the list asked for (``offline=true``); None when unknown (an imported file),
            then a room counts as online unless its ``current_show`` is ``offline``.

    Raises:
        RoomListError: not JSON, or a field of the wrong type (named).
    """
    try:
        envelope = _decode_envelope.decode(clean_json(body))
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$.")
        raise RoomListError(f"{path.rstrip('`') or 'envelope'}: {message}") from None
    except msgspec.DecodeError as exc:
        raise RoomListError(f"not JSON ({exc})") from None
    rows = [_from_wire(room, offline) for room in envelope.rooms if room.is_following]
    anonymous = not rows and (bool(envelope.rooms) or envelope.total_count > ANONYMOUS_TOTAL)
    return RoomListPage(
        rows=rows,
        returned=len(envelope.rooms),
        total_count=envelope.total_count,
        anonymous=anonymous,
    )


def _from_wire(room: _WireRoom, offline: bool | None) -> RoomObservation:
    online = room.current_show != "offline" if offline is None else not offline
    gender = clean_text(room.gender)
    return RoomObservation(
        username=clean_text(room.username).lower(),
        online=online,
        current_show=clean_text(room.current_show) or ("public" if online else "offline"),
        viewers=numbers.count(room.num_users) if online else 0,
        subject=clean_text(room.room_subject) or None,
        followers=numbers.count(room.num_followers),
        tags=[clean_text(tag).lower() for tag in room.tags],
        gender=gender_code(gender) if gender else None,
        age=numbers.age(room.display_age),
        location=clean_text(room.location) or None,
        country=clean_text(room.country) or None,
        image_url=clean_text(room.img) or None,
    )


def parse_counts(page: Selector) -> tuple[int, int] | None:
    """The header's "(online/total)" followed counts, or None when the page has none."""
    found = _COUNTS.search(" ".join(page.css("span.followed_counts ::text").getall()))
    if found is None:
        return None
    online, total = numbers.parse_int(found.group(1)), numbers.parse_int(found.group(2))
    return None if online is None or total is None else (online, total)


def parse_paging(page: Selector) -> tuple[int, int]:
    """(this page, last page) from ``ul.paging``: numbered links only ("next" points past the
    end on the last page); (1, 1) without paging."""
    current = page_number(page.css("ul.paging li.active a::text").get(default="")) or 1
    last = current
    for link in page.css("ul.paging a"):
        text = page_number(link.xpath("normalize-space(string())").get(default=""))
        found = _PAGE.search(link.attrib.get("href", ""))
        number = page_number(found.group(1)) if found else None
        if number and (text or link.attrib.get("data-testid") == "page-number-button"):
            last = max(last, number)
        elif text:
            last = max(last, text)
    return current, last


def parse_followed_page(html: str, *, offline: bool | None = None) -> FollowedPage:
    """Reads a rendered or saved followed-cams page (rules in the module docstring).

    Args:
        html: the page.
        offline: which list the page is; None reads each card's own status (``li.cams``).
    """
    page = Selector(text=html or "<html></html>")
    cards = list(page.xpath(_CARDS))
    if not cards:
        cards = _dropdown_online(page)
        offline = False if cards else offline
    rows: dict[str, RoomObservation] = {}
    for card in cards:
        row = _from_card(card, offline)
        if row is not None:
            rows.setdefault(row.username, row)
    current, last = parse_paging(page)
    return FollowedPage(
        rows=list(rows.values()),
        counts=parse_counts(page),
        page=current,
        last_page=last,
        logged_in=bool(page.css(LOGGED_IN_SELECTOR)),
    )


def _dropdown_online(page: Selector) -> list[Selector]:
    """The header dropdown's cards up to its "recommended" header, in one document walk.

    (The XPath ``preceding::`` test this replaces scanned the document once per card.)
    """
    found: list[Selector] = []
    for node in page.root.iter("*"):
        if _RECOMMENDED_HEADER in (node.get("class") or ""):
            break
        if node.get("data-testid") == "room-card" and any(
            "followedDropdown" in (up.get("class") or "") for up in node.iterancestors()
        ):
            found.append(Selector(root=node))
    return found


def username_of(element: Selector) -> str | None:
    """The username an element names (see :func:`formats.markup.name_of`)."""
    return name_of(element.root)


def _from_card(card: Selector, offline: bool | None) -> RoomObservation | None:
    username = username_of(card)
    if username is None:
        return None
    status = card.css("li.cams::text, [data-testid=room-card-status]::text").get(default="")
    status = status.strip().lower()
    online = (status != "offline") if offline is None else not offline
    viewers_text = _VIEWERS.search(status)
    viewers = numbers.parse_int(viewers_text.group(1)) if viewers_text else None
    subject = card.css("ul.subject li::attr(title), [data-testid=room-subject]::attr(title)").get()
    subject = clean_text(subject) if subject is not None else None
    gender = _GENDER.search(card.css("span.age::attr(class)").get(default=""))
    image = card.css("img::attr(src)").get()
    return RoomObservation(
        username=username,
        online=online,
        current_show=None if online else "offline",
        viewers=0 if not online else viewers,
        subject=subject,
        tags=_hashtags(subject) if subject is not None else None,
        gender=gender_code(gender.group(1)) if gender else None,
        age=numbers.age(card.css("span.age::text").get(default="")),
        location=clean_text(card.css("li.location::text").get(default="").strip()) or None,
        image_url=clean_text(image) if image is not None else None,
    )


def _hashtags(subject: str) -> list[str]:
    return list(dict.fromkeys(tag.lower() for tag in re.findall(r"#(\w+)", subject)))
