"""Pure parser of ``/accounts/followers/`` pages, whose real markup nobody has published.

FORMATS.md §3.9: no saved page exists; the only public scraper (mhc-control-panel) takes every
one-segment profile link. So the parser tries, in order:

1. the configured ``[followers] username_selector`` (defaults: ``data-testid`` hooks and
   ``a.username`` inside a followers list, the simulator's guess of the markup);
2. when that matches nothing, profile links ``a[href="/<name>/"]`` inside the main content
   (``#main``, ``main``, ``[role=main]``, ``#content``; else the body), leaving out the header,
   navigation, footer, paging and the site's own one-segment paths.

It reports which way it read the page: a fallback read is a guess, and a crawl trusts it for
follow state only when the page also shows a follower count that it matches.

A page listing nobody is an empty list only with a positive sign of it: a count of 0, or the
site's empty-list message (``empty``); a page that merely lists nobody may be a broken one.
"""

from __future__ import annotations

import re

import msgspec
from parsel import Selector

from roomwatch.config import FollowersConfig
from sessions.followed_parsing import LOGGED_IN, parse_paging, username_of

_NUMBER = re.compile(r"\d[\d,]*")
_ONE_SEGMENT = re.compile(r"^(?:https?://[^/]+)?/([A-Za-z0-9_]+)/$")
_MAIN = "#main, main, [role=main], #content"
_OUTSIDE = (
    "ancestor::header or ancestor::nav or ancestor::footer or ancestor::*[@id = 'header'"
    " or @id = 'nav' or @id = 'footer' or @id = 'user_information'"
    " or contains(@class, 'paging') or contains(@class, 'followedDropdown')]"
)
_SITE_PATHS_TEXT = """
accounts auth tag tags p tipping supporter affiliates security terms privacy contest apps blog
jobs api in follow help faq contact billingsupport sitemap emoticons photo_videos roomlogin
external_link law_enforcement dmca 2257 followed_cams
"""
SITE_PATHS = frozenset(_SITE_PATHS_TEXT.split())
"""One-segment paths of the site that are not profiles (cam categories all contain '-')."""
EMPTY_SELECTOR = "[data-testid=followers-empty], .followers_empty"
EMPTY_TEXT = re.compile(
    r"\b(?:no followers(?: yet)?|(?:do not|don't|does not|doesn't) have any followers)\b", re.I
)
"""The site's empty-list message (markup unknown: a hook, else the wording, in the main content)."""


class FollowersPage(msgspec.Struct, frozen=True, kw_only=True):
    """What one followers page shows.

    Attributes:
        usernames: the followers listed, in page order, each once.
        count: the total number of followers, when the page shows one.
        page: this page's number (1 without paging).
        last_page: the highest page number linked.
        by_selector: read with the configured selector (False: profile-link fallback).
        logged_in: the header shows a logged-in user.
        empty: the page says the list is empty (its empty-list message), not merely no names.
    """

    usernames: list[str]
    count: int | None
    page: int
    last_page: int
    by_selector: bool
    logged_in: bool
    empty: bool = False


def parse_followers(html: str, settings: FollowersConfig, *, own: str = "") -> FollowersPage:
    """Reads one followers page (strategy in the module docstring).

    Args:
        html: the page.
        settings: the ``[followers]`` selectors.
        own: the account's own name, never counted as its follower.
    """
    page = Selector(text=html or "<html></html>")
    names = [username_of(element) for element in page.css(settings.username_selector)]
    by_selector = any(names)
    if not by_selector:
        names = _profile_links(page)
    skip = {own.lower(), ""}
    usernames = list(dict.fromkeys(name for name in names if name and name not in skip))
    count_text = page.css(settings.count_selector).xpath("string()").get(default="")
    count = _NUMBER.search(count_text)
    current, last = parse_paging(page)
    return FollowersPage(
        usernames=usernames,
        count=int(count.group(0).replace(",", "")) if count else None,
        page=current,
        last_page=last,
        by_selector=by_selector,
        logged_in=bool(page.css(LOGGED_IN)),
        empty=not usernames and _says_empty(page),
    )


def _says_empty(page: Selector) -> bool:
    scope = page.css(_MAIN)[:1] or page.css("body")[:1] or [page]
    if scope[0].css(EMPTY_SELECTOR):
        return True
    text = " ".join(scope[0].xpath(f".//text()[not({_OUTSIDE})]").getall())
    return bool(EMPTY_TEXT.search(text))


def _profile_links(page: Selector) -> list[str | None]:
    scope = page.css(_MAIN)[:1] or page.css("body")[:1] or [page]
    names: list[str | None] = []
    for link in scope[0].xpath(f".//a[@href][not({_OUTSIDE})]"):
        segment = _ONE_SEGMENT.match(link.attrib["href"].strip())
        if segment and segment.group(1).lower() not in SITE_PATHS:
            names.append(username_of(link))
    return names
