"""The follow-list parsers on the real samples (FORMATS.md §3.4-3.6) and on guessed markup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from parsel import Selector

from formats.followed_cams import (
    decode_room_list,
    parse_counts,
    parse_followed_page,
    parse_paging,
)
from formats.followers import parse_followers
from roomwatch.config import FollowersConfig
from roomwatch.errors import RoomListError

SAMPLES = Path(__file__).parents[1] / "fixtures"
ROOM_LIST = SAMPLES / "roomlist_api_ts_room-list_2026-02-06_anonymous.json"


def test_the_anonymous_public_list_means_the_session_expired() -> None:
    page = decode_room_list(ROOM_LIST.read_bytes(), offline=False)
    assert (page.anonymous, page.rows, page.returned, page.total_count) == (True, [], 11, 8045)


def test_only_rows_marked_followed_count() -> None:
    sample = json.loads(ROOM_LIST.read_bytes())
    for room in sample["rooms"][:2]:
        room["is_following"] = True
    page = decode_room_list(json.dumps(sample).encode(), offline=False)
    assert not page.anonymous
    assert [row.username for row in page.rows] == ["pixelmaple67", "quiet_maple68"]
    first = page.rows[0]
    assert (first.online, first.viewers, first.followers, first.age) == (True, 15028, 216197, 21)
    assert (first.gender, first.country, first.tags) == (
        "f",
        "AU",
        ["bigboobs", "bigass", "new", "18"],
    )
    assert first.subject is not None and first.subject.startswith("hello from the fixture room")
    assert first.image_url == "https://thumb.live.mmcdn.com/riw/pixelmaple67.jpg?1770353850"
    offline = decode_room_list(json.dumps(sample).encode(), offline=True).rows[0]
    assert (offline.online, offline.current_show, offline.viewers) == (False, "public", 0)


def test_an_empty_followed_list_is_not_the_anonymous_one() -> None:
    page = decode_room_list(b'{"rooms": [], "total_count": 0}', offline=True)
    assert (page.anonymous, page.rows, page.total_count) == (False, [], 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"rooms": [{"username": "a", "num_users": "9"}], "total_count": 1}',
            "rooms[0].num_users",
        ),
        (b'{"rooms": []}', "total_count"),
        (b"<html>", "not JSON"),
    ],
)
def test_a_bad_answer_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(RoomListError, match=message.replace("[", r"\[")):
        decode_room_list(body, offline=False)


def test_the_legacy_room_list_and_its_paging() -> None:
    page = parse_followed_page(
        (SAMPLES / "cb_html_2021-01_homepage_roomlist_ul-list_and_paging.html").read_text()
    )
    # The fixture keeps 12 of the sample's 91 cards, and its paging up to page 91.
    assert (len(page.rows), page.page, page.last_page, page.counts) == (12, 1, 91, None)
    first = page.rows[0]
    assert (first.username, first.online, first.viewers, first.gender) == (
        "zesty_maple77",
        True,
        13614,
        "f",
    )
    assert first.tags == ["french", "lovense", "bigboobs", "cum"]
    assert first.location == "France"


def test_legacy_offline_entries() -> None:
    html = (
        "<ul class='list'><li class='room_list_room'><a href='/on_one/' data-room='on_one'></a>"
        "<ul class='sub-info'><li class='cams'>1.2 hrs, 1,204 viewers</li></ul></li>"
        "<li class='room_list_room'><a href='/off_one/' data-room='off_one'></a>"
        "<ul class='sub-info'><li class='cams'>offline</li></ul></li></ul>"
    )
    rows = parse_followed_page(html).rows
    assert [(r.username, r.online, r.viewers) for r in rows] == [
        ("on_one", True, 1204),
        ("off_one", False, 0),
    ]


def test_the_header_dropdown_stops_at_the_recommended_rooms() -> None:
    page = parse_followed_page(
        (SAMPLES / "cb_html_2026-01_loggedin_followed_dropdown.html").read_text()
    )
    names = [row.username for row in page.rows]
    assert len(names) == 75
    assert names[0] == "lunar_comet89"
    assert "noble_pebble169" not in names and "mistypebble168" not in names  # recommended
    assert all(row.online for row in page.rows)


def test_the_header_counts_and_current_paging_on_a_real_page() -> None:
    html = (SAMPLES / "cb_html_2026-01_loggedin_roompage_snippets.html").read_text()
    page = parse_followed_page(html)
    assert (page.counts, page.logged_in, page.rows) == ((75, 1346), True, [])
    assert parse_paging(Selector(text=html)) == (1, 1)  # "next" links past the end
    assert parse_counts(Selector(text="<span class='followed_counts'>(1,002/12,345)</span>")) == (
        1002,
        12345,
    )


def test_current_cards_outside_recommendations() -> None:
    html = (
        "<div id='roomlist_root'><div class='roomlist_container' data-testid='room-list-container'>"
        "<ul class='list'><li class='roomCard' data-testid='room-card'>"
        "<a href='/mine/' data-room='mine'></a><ul class='subject'><li title='hi #Yo'>hi</li></ul>"
        "</li></ul></div><div class='followRecommendations roomlist_container'><ul class='list'>"
        "<li data-testid='room-card'><a data-room='pushed' href='/pushed/'></a></li></ul></div>"
        "<ul class='paging'><li class='page_number_container active'><a "
        "data-testid='page-number-button' href='?page=2'>2</a></li><li><a "
        "data-testid='page-number-button' href='?page=7'>7</a></li></ul></div>"
    )
    page = parse_followed_page(html, offline=True)
    assert [(r.username, r.online, r.tags) for r in page.rows] == [("mine", False, ["yo"])]
    assert (page.page, page.last_page) == (2, 7)


def test_followers_by_the_configured_selector() -> None:
    html = (
        "<div id='header'><a href='/p/alice/'>alice</a></div><div id='main'><h1>Followers "
        "<span class='followers_count'>(1,203)</span></h1><ul class='followers_list'>"
        "<li><a class='username' href='/Fan_One/'>Fan_One</a></li>"
        "<li><a class='username' href='/fan_two/'>fan_two</a></li></ul>"
        "<ul class='paging'><li class='active'><a href='?page=1'>1</a></li>"
        "<li><a href='?page=25'>25</a></li></ul></div>"
    )
    page = parse_followers(html, FollowersConfig())
    assert (page.usernames, page.count, page.page, page.last_page) == (
        ["fan_one", "fan_two"],
        1203,
        1,
        25,
    )
    assert page.by_selector


def test_followers_of_unknown_markup_come_from_profile_links() -> None:
    html = (
        "<header><a href='/followed-cams/'>Following</a><a href='/alice/'>me</a></header>"
        "<div id='main'><table><tr><td><a href='/fan_one/'>x</a></td></tr>"
        "<tr><td><a href='https://chaturbate.com/fan_two/'>y</a></td></tr></table>"
        "<a href='/tipping/'>tokens</a><a href='/female-cams/'>girls</a><a href='/alice/'>me</a>"
        "<a href='/tag/x/'>#x</a><a href='/fan_one/'>again</a></div>"
    )
    page = parse_followers(html, FollowersConfig(), own="Alice")
    assert (page.usernames, page.by_selector, page.count) == (["fan_one", "fan_two"], False, None)


def _card(name: str, *, age: str, cams: str, subject: str = "hi #tag") -> str:
    return (
        f"<li class='room_list_room'><a href='/{name}/' data-room='{name}'><img src='/t.jpg'>"
        f"</a><div class='details'><div class='title'><a href='/{name}/'>{name}</a>"
        f"<span class='age genderf'>{age}</span></div><ul class='subject'>"
        f"<li title='{subject}'>x</li></ul><ul class='sub-info'><li class='location'>"
        f"Mars\x00</li><li class='cams'>{cams}</li></ul></div></li>"
    )


def test_numbers_that_are_not_numbers_or_do_not_fit_are_left_out() -> None:
    html = (
        "<span class='followed_counts'>(²/3)</span><ul class='list'>"
        + _card("super_two", age="²", cams="² viewers")
        + _card("too_old", age="99999", cams="99999999999 viewers")
        + _card("arabic_digits", age="٢٣", cams="١٢ viewers")
        + _card("fine_one", age="23", cams="1,204 viewers", subject="a\x00b #Fun")
        + "</ul>"
    )
    page = parse_followed_page(html, offline=False)
    ages = {row.username: (row.age, row.viewers) for row in page.rows}
    assert ages == {
        "super_two": (None, None),
        "too_old": (None, None),
        "arabic_digits": (None, None),
        "fine_one": (23, 1204),
    }
    assert page.counts is None  # "(²/3)" is no count
    fine = page.rows[-1]
    assert (fine.subject, fine.tags, fine.location) == ("ab #Fun", ["fun"], "Mars")


def test_the_room_list_keeps_numbers_in_range_and_text_storable() -> None:
    room = {
        "username": "odd_room",
        "display_age": 99999,
        "num_users": -4,
        "num_followers": 2**40,
        "room_subject": "hello\u0000 world",
        "tags": ["a\u0000b"],
        "location": "\u0000",
        "is_following": True,
    }
    body = json.dumps({"rooms": [room], "total_count": 1}).encode()
    row = decode_room_list(body, offline=False).rows[0]
    assert (row.age, row.viewers, row.followers) == (None, None, None)
    assert (row.subject, row.tags, row.location) == ("hello world", ["ab"], None)
    young = json.dumps({"rooms": [{**room, "display_age": 17}], "total_count": 1}).encode()
    assert decode_room_list(young, offline=False).rows[0].age is None


def test_a_lone_surrogate_in_one_room_does_not_lose_the_answer() -> None:
    # msgspec refuses a lone surrogate escape outright: one room's subject would fail the page.
    body = (
        b'{"rooms": [{"username": "odd_room", "room_subject": "a\\ud800b", "tags": [],'
        b' "is_following": true}], "total_count": 1}'
    )
    [row] = decode_room_list(body, offline=False).rows
    assert (row.username, row.subject) == ("odd_room", "ab")


def test_a_saved_room_page_reads_the_dropdown_up_to_the_recommended_rooms() -> None:
    def card(name: str) -> str:
        return f"<div data-testid='room-card'><a href='/{name}/' data-room='{name}'></a></div>"

    html = (
        "<div class='followedDropdown'><div class='list'>"
        + card("live_one")
        + card("live_two")
        + "<div class='followRecommendedHeader'>Recommended For You</div>"
        + card("not_followed")
        + "</div></div>"
    )
    page = parse_followed_page(html)
    assert [(row.username, row.online) for row in page.rows] == [
        ("live_one", True),
        ("live_two", True),
    ]
