"""Pure parser of ``/accounts/followers/`` pages, whose real markup nobody has published.

FORMATS.md §3.9: no saved page exists; the only public scraper (mhc-control-panel) takes every
one-segment profile link. So the parser tries, in order:

1. the configured ``[followers] username_selector`` (defaults: ``data-testid`` hooks and
   ``a.username`` inside a followers list, the simulator's guess of the markup);
2. when that matches nothing, profile links ``a[href="/<name>/"]`` inside the main content
   (``#main``, ``main``, ``[role=main]``, ``#content``; else the body), leaving out the header,
   navigation, footer, paging and the site's own one-segment paths.

It reports which way it read the page: a fallback read is a guess, and a crawl trusts it for
follow state only when a follower count confirms it. The count and the
paging are read by ``formats.page_links`` (the configured count selector first, then the
common ways a page shows them); :class:`FollowersWalk` decides from the pages read which page
comes next and whether the pages read are the whole list.

Every step is linear in the page's size (``formats.markup``): a saved page of 20,000 cards is
read in about a second.

A page listing nobody is an empty list only with a positive sign of it: a count of 0, or the
site's empty-list message (``empty``); a page that merely lists nobody may be a broken one.
"""

from __future__ import annotations

import re

import msgspec
from parsel import Selector

from formats.markup import Element, name_of, profile_name, root_of, select
from formats.page_links import MAX_PAGE, read_count, read_paging
from formats.site import FOLLOWERS_PATH, LOGGED_IN_SELECTOR
from roomwatch.config import FollowersConfig
from roomwatch.text import clean_text

_MAIN = "#main, main, [role=main], #content"
_OUTSIDE = (
    "ancestor::header or ancestor::nav or ancestor::footer or ancestor::*[@id = 'header'"
    " or @id = 'nav' or @id = 'footer' or @id = 'user_information'"
    " or contains(@class, 'paging') or contains(@class, 'pagination')"
    " or contains(@class, 'followedDropdown')]"
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
        next_page: the page a "next" link leads to, when it leads past this one.
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
    next_page: int | None = None
    empty: bool = False


def parse_followers(
    html: str, settings: FollowersConfig, *, own: str = "", path: str = FOLLOWERS_PATH
) -> FollowersPage:
    """Reads one followers page (strategy in the module docstring).

    Args:
        html: the page.
        settings: the ``[followers]`` selectors.
        own: the account's own name, never counted as its follower.
        path: the list's path, which paging links lead to.
    """
    root = root_of(Selector(text=clean_text(html) or "<html></html>"))
    names = [name_of(element) for element in select(root, settings.username_selector)]
    by_selector = any(names)
    if not by_selector:
        names = _profile_links(root)
    skip = {own.lower(), ""}
    usernames = list(dict.fromkeys(name for name in names if name and name not in skip))
    paging = read_paging(root, path)
    return FollowersPage(
        usernames=usernames,
        count=read_count(root, settings.count_selector),
        page=paging.page,
        last_page=paging.last_page,
        next_page=paging.next_page,
        by_selector=by_selector,
        logged_in=bool(select(root, LOGGED_IN_SELECTOR)),
        empty=not usernames and _says_empty(root),
    )


def _says_empty(root: Element) -> bool:
    """The site's empty-list message in the main content: its hook, or its wording."""
    scope = (select(root, _MAIN) or root.xpath("//body") or [root])[0]
    if select(scope, EMPTY_SELECTOR):
        return True
    text = " ".join(scope.xpath(f".//text()[not({_OUTSIDE})]"))
    return bool(EMPTY_TEXT.search(text))


def _profile_links(root: Element) -> list[str | None]:
    """Profile links in the main content, outside the header, navigation, footer and paging."""
    scope = (select(root, _MAIN) or root.xpath("//body") or [root])[0]
    names: list[str | None] = []
    for link in scope.xpath(f".//a[@href][not({_OUTSIDE})]"):  # ancestors: depth, not size
        name = profile_name(link.get("href"))
        if name is not None and name.lower() not in SITE_PATHS:
            names.append(name_of(link))
    return names


class FollowersWalk:
    """The pages of one followers list read in turn: which comes next, and is that all of it?

    A page is read by number (``?page=N``). Pages up to the highest one linked by number must
    each list someone. Past them, a page is read only because a "next" link leads there, or to
    see whether a full last page was the end; there an empty page (or a 404) ends the list. A
    page there that only repeats names already read ends the walk without ending the list: the
    site may serve its last page for any number past it, or ignore ``?page=`` and serve page 1
    again, and the two cannot be told apart, so such a list is not proved whole.

    The pages read are the whole list when the page shows a count and the names read match it
    (within the tolerance); the site's empty-list message counts as a count of 0. When no page
    shows a count (:attr:`counted` is False), the pages
    cannot prove it by themselves, whatever their paging says: only the Stats API's follower
    count can, compared when the conclusion is stored (``storage/follow_guard.py``). Names read
    from bare profile links (unknown markup) are a guess that likewise needs a count.

    Attributes:
        names: everyone read so far, in order.
        count: the latest count a page showed.
        guessed: some page was read from profile links.
        ended: why the walk stopped at the end of the list (None: it did not get there).
        doubt: why the walk stopped without knowing whether it got there.
    """

    def __init__(self, tolerance: int) -> None:
        self.tolerance = tolerance
        self.names: dict[str, None] = {}
        self.count: int | None = None
        self.guessed = False
        self.ended: str | None = None
        self.doubt: str | None = None
        self._numbered_last = 1
        self._page_size = 0
        self._said_empty = False

    def may_be_empty(self, page_no: int) -> bool:
        """Whether page ``page_no`` listing nobody would end the list rather than be wrong."""
        return page_no > self._numbered_last

    def add(self, page_no: int, page: FollowersPage) -> int | None:
        """Takes page ``page_no`` as read; the next page to read, or None when the walk is over."""
        new = [name for name in page.usernames if name not in self.names]
        if page_no > self._numbered_last and not new:
            if page.usernames:
                self.doubt = (
                    f"page {page_no}, past the last one linked, repeats names already read (the "
                    "site may ignore ?page=): cannot tell the list ended"
                )
            else:
                self.ended = f"page {page_no} past the last one linked lists no one"
            return None
        self.names.update(dict.fromkeys(new))
        self.count = page.count if page.count is not None else self.count
        self._said_empty = self._said_empty or page.empty
        self.guessed = self.guessed or (bool(page.usernames) and not page.by_selector)
        if page_no == 1:
            self._page_size = len(page.usernames)
            if not page.usernames and page.last_page <= 1 and page.next_page is None:
                self.ended = "page 1 lists no one"
                return None
        self._numbered_last = max(self._numbered_last, page.last_page)
        if page_no < max(self._numbered_last, page.next_page or 0):
            return page_no + 1
        if self.count is not None and len(self.names) >= self.count - self.tolerance:
            self.ended = f"the {len(self.names)} names read match the count"
            return None
        if len(page.usernames) < self._page_size:
            self.ended = (
                f"page {page_no}, the last, lists {len(page.usernames)}, fewer than page 1's "
                f"{self._page_size}"
            )
            return None
        return page_no + 1 if page_no < MAX_PAGE else None

    @property
    def total(self) -> int | None:
        """The follower count the pages show: the latest count, or 0 when the list is empty
        and says so (the site's empty-list message); None when they show none."""
        if self.count is not None:
            return self.count
        return 0 if self._said_empty and not self.names else None

    @property
    def counted(self) -> bool:
        """The pages show the follower count: they alone can prove the list whole."""
        return self.total is not None

    def verdict(self) -> str | None:
        """Why the pages read are not the whole list (one line); None when the page's count
        confirms them, or when no page shows a count (then the Stats API's count decides)."""
        read, total = len(self.names), self.total
        if total is not None and abs(read - total) > self.tolerance:
            return (
                f"incomplete: read {read} followers but the page counts {total} "
                f"(tolerance {self.tolerance})"
            )
        return None

    def summary(self) -> str:
        """How the walk ended, for the log: the last page's sign, or why it stopped."""
        return self.ended or self.doubt or "the last page read was full"
