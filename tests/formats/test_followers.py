"""The followers parser on small pages in markup it was not written for, and the walk's rules."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from parsel import Selector

from formats.followers import FollowersPage, FollowersWalk, parse_followers
from formats.markup import root_of, select
from formats.page_links import MAX_PAGE
from roomwatch.config import FollowersConfig

PAGES = Path(__file__).parents[1] / "fixtures" / "follow_pages"
SETTINGS = FollowersConfig()


def _read(name: str, own: str = "owner_one") -> FollowersPage:
    return parse_followers((PAGES / name).read_text(), SETTINGS, own=own)


def test_a_table_with_the_count_in_its_heading_and_div_pagination() -> None:
    page = _read("table_page2.html")
    assert page.usernames == ["fan_alpha", "fan_bravo", "fan_charlie"]  # not owner, not /tags/
    assert not page.by_selector
    assert page.count == 145
    assert (page.page, page.last_page, page.next_page) == (2, 3, 3)
    assert page.logged_in


def test_cards_with_a_count_in_words_and_rel_next_paging_in_a_nav() -> None:
    page = _read("cards_rel_next.html")
    assert page.usernames == ["cardfan_1", "cardfan_2", "cardfan_3"]  # header, footer left out
    assert page.count == 1234
    assert (page.page, page.last_page, page.next_page) == (4, 5, 5)


def test_a_count_element_named_for_it() -> None:
    page = _read("count_element.html")
    assert page.usernames == ["listfan_a", "listfan_b"]
    assert page.count == 2051
    assert (page.page, page.last_page, page.next_page) == (1, 1, None)


def test_numbers_that_are_not_numbers_are_no_count_and_no_page() -> None:
    page = _read("odd_numbers.html")
    assert page.usernames == ["oddfan_a"]
    assert page.count is None  # "(²)" passes str.isdigit(); "1.2k" is not a count
    assert (page.page, page.last_page, page.next_page) == (1, 1, None)


def test_the_configured_selectors_come_first() -> None:
    html = (PAGES / "table_page2.html").read_text()
    chosen = FollowersConfig(username_selector="tr:nth-child(2) a", count_selector="td")
    page = parse_followers(html, chosen)
    assert page.usernames == ["fan_bravo"]
    assert page.by_selector
    assert page.count == 145  # the cells hold no count: the heading's is read next


def test_a_selector_group_matches_in_document_order_each_once() -> None:
    html = "<ul><li class='a b' id='1'></li><li class='b' id='2'></li><li class='a' id='3'></li>"
    root = root_of(Selector(text=html))
    assert [node.get("id") for node in select(root, ".b, .a, li#2")] == ["1", "2", "3"]


def _page(
    names: list[str],
    *,
    count: int | None = None,
    last: int = 1,
    nxt: int | None = None,
    by_selector: bool = True,
) -> FollowersPage:
    return FollowersPage(
        usernames=names,
        count=count,
        page=1,
        last_page=last,
        next_page=nxt,
        by_selector=by_selector,
        logged_in=True,
    )


def test_without_a_count_a_short_last_page_ends_the_list() -> None:
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b", "c"], last=2)) == 2
    assert walk.add(2, _page(["d"], last=2)) is None
    assert walk.verdict() is None
    assert list(walk.names) == ["a", "b", "c", "d"]


def test_without_a_count_a_full_last_page_needs_an_empty_one_after_it() -> None:
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"], last=2)) == 2
    assert walk.add(2, _page(["c", "d"], last=2)) == 3  # full: is that the end?
    assert walk.ended is None  # not until page 3 says so
    assert walk.may_be_empty(3) and not walk.may_be_empty(2)
    assert walk.add(3, _page([], last=2)) is None
    assert walk.ended == "page 3 past the last one linked lists no one"
    # The end of the paging is no proof: with no count on the page, the Stats API's decides.
    assert not walk.counted and walk.verdict() is None


def test_a_page_past_the_end_repeating_names_stops_the_walk_but_proves_nothing() -> None:
    # A site that ignores ?page= serves page 1 again: taking that for the end would conclude
    # a list of 50 when there may be 500.
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"])) == 2  # no paging at all
    assert walk.add(2, _page(["a", "b"])) is None  # page 1 again: stop reading
    assert "repeats names already read" in walk.summary()
    assert walk.ended is None and not walk.counted


def test_the_sites_empty_list_message_is_a_count_of_0_on_page_1_only() -> None:
    empty = FollowersWalk(0)
    assert empty.add(1, msgspec.structs.replace(_page([]), empty=True)) is None
    assert (empty.total, empty.counted, empty.verdict()) == (0, True, None)
    # Past the end of a list, the same message says nothing of the list's size.
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"], last=2)) == 2
    assert walk.add(2, _page(["c", "d"], last=2)) == 3
    assert walk.add(3, msgspec.structs.replace(_page([]), empty=True)) is None
    assert (walk.total, walk.counted, walk.verdict()) == (None, False, None)


def test_new_names_past_the_links_keep_the_walk_going() -> None:
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"])) == 2
    assert walk.add(2, _page(["c", "d"])) == 3
    assert walk.add(3, _page(["e"])) is None
    assert walk.verdict() is None and len(walk.names) == 5


def test_a_next_link_leads_on_and_a_count_ends_the_walk() -> None:
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"], count=4, nxt=2)) == 2
    assert walk.add(2, _page(["c", "d"], count=4, nxt=3)) == 3  # a next link: read it
    walk = FollowersWalk(0)
    assert walk.add(1, _page(["a", "b"], count=4, last=2)) == 2
    assert walk.add(2, _page(["c", "d"], count=4, last=2)) is None  # all counted: no probe
    assert walk.verdict() is None


def test_counts_and_guesses_decide_the_verdict() -> None:
    short = FollowersWalk(0)
    short.add(1, _page(["a", "b"], count=145, last=1))
    short.add(2, _page([]))
    assert short.verdict() == "incomplete: read 2 followers but the page counts 145 (tolerance 0)"
    guessed = FollowersWalk(0)
    guessed.add(1, _page(["a", "b"], last=2, by_selector=False))
    guessed.add(2, _page(["c"], last=2, by_selector=False))
    # A guess no page count confirms: only the Stats API's count can (the crawl asks for it).
    assert guessed.guessed and not guessed.counted and guessed.verdict() is None
    confirmed = FollowersWalk(1)
    confirmed.add(1, _page(["a", "b"], count=3, by_selector=False))
    assert confirmed.verdict() is None  # within the tolerance of 1


@pytest.mark.parametrize("far", [MAX_PAGE + 1, 10**12])
def test_a_link_to_an_absurd_page_is_not_followed(far: int) -> None:
    html = f"<div id='main'><a href='/x_fan/'>x</a><a href='?page={far}'>{far}</a></div>"
    page = parse_followers(html, SETTINGS)
    assert (page.last_page, page.next_page) == (1, None)
