"""Imports of saved followed-cams and followers pages: what they hold, and whether it is all.

``roomwatch import-html`` and ``POST /api/v1/imports/html`` both call :func:`plan_import`
with the saved pages, then store the plan with ``storage.follow_state`` under the source
``html_import``. The parsers are the crawls' own, and so are the rules: the rooms or names
seen are always recorded as observations, but follow state changes only when the pages are
provably the whole list:

* following: the header's "(online/total)" is shown and the rooms of all pages given together
  match its total within ``followed_cams.count_tolerance`` (one page of a longer list, or the
  online list alone, falls short of it);
* followers: every page from 1 to the last one linked is among the pages given, and the names
  match a follower count (within ``followers.count_tolerance``): the page's, when it shows one;
  otherwise the Stats API's (``room_stats``), observed within ``stats.count_max_age_minutes``
  of when the pages were saved. Such a plan is ``by_stats``: the count is read and compared
  when it is stored (:meth:`ImportPlan.count_check`, ``storage/follow_guard.py``), and without
  a matching one the import is partial (:meth:`ImportPlan.unconfirmed`), as a crawl of the same
  pages would fail. Names read from bare profile links (unknown markup) likewise need a count;
  a page listing nobody needs a count of 0 or the site's empty-list message (which counts as
  a count of 0).

A saved page is as old as it was when saved: the import uses that time (:func:`observation_time`)
and refuses a page saved before the list's last complete check, which would roll follow state
back. A complete import is also subject to the mass-change guard (``storage/follow_guard.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import msgspec
from parsel import Selector

from formats.followed_cams import parse_followed_page
from formats.followers import parse_followers
from formats.markup import root_of
from formats.site import LOGIN_FORM_SELECTOR, USERNAME_SELECTOR
from roomwatch.config import Config
from roomwatch.errors import HtmlImportError, HtmlTooLargeError, SavedAtError
from storage.follow_state import CountCheck, Relation
from storage.records import RoomObservation

Kind = Literal["followers", "following"]
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
"""A saved page is about 1.5 MB (FORMATS.md §3.5); anything past this is not one."""
MAX_ELEMENTS = 300_000
"""A saved followed-cams page holds some 15,000 elements; 20,000 follower cards about 100,000.
Past this a page is refused before it is read, so one upload cannot hold a worker for long."""
_PAGE_LIKE = "boolean(//body) or boolean(//div) or boolean(//li) or boolean(//a)"
UNCHANGED = "follow state unchanged"
FUTURE_MARGIN = dt.timedelta(minutes=5)
"""How far ahead of the database's clock a saved time may be (clocks of two machines)."""
_LISTS = {"following": "followed-cams list", "followers": "followers list"}


class ImportPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What saved pages hold and whether they may change follow state.

    Attributes:
        kind: ``following`` (followed-cams pages) or ``followers``.
        relation: the ``persons`` column it concerns.
        observations: what the pages showed, one row per person.
        complete: the pages are the whole list (rules in the module docstring).
        reason: one line saying why it is complete or partial.
        by_stats: followers pages that show no count: complete only if the Stats API's
            follower count matches them, compared when stored (:meth:`count_check`).
        account: the account whose pages they are (their header's name; "" if not shown).
    """

    kind: Kind
    relation: Relation
    observations: list[RoomObservation]
    complete: bool
    reason: str
    by_stats: bool = False
    account: str = ""

    @property
    def usernames(self) -> list[str]:
        """Everyone the pages list."""
        return [row.username for row in self.observations]

    @property
    def concludes(self) -> bool:
        """Storing it may change follow state: complete, or complete if the Stats API agrees."""
        return self.complete or self.by_stats

    def count_check(self, config: Config, saved_at: dt.datetime) -> CountCheck | None:
        """What must confirm the plan as it is stored: for ``by_stats`` pages, the Stats API's
        count of their account (the header's, else ``stats.account``) near ``saved_at``."""
        if not self.by_stats:
            return None
        return CountCheck(
            account=self.account or config.stats.account,
            tolerance=config.followers.count_tolerance,
            max_age_minutes=config.stats.count_max_age_minutes,
            at=saved_at,
        )

    def confirmed(self) -> ImportPlan:
        """The plan once the Stats API's count confirmed it."""
        if not self.by_stats:
            return self
        reason = f"complete: {len(self.observations)} followers, as the Stats API counts"
        return msgspec.structs.replace(self, complete=True, by_stats=False, reason=reason)

    def unconfirmed(self, why: str) -> ImportPlan:
        """The plan once the Stats API's count did not confirm it (``why``): partial."""
        reason = f"partial: {why}; {UNCHANGED}"
        return msgspec.structs.replace(self, complete=False, by_stats=False, reason=reason)


def plan_import(kind: Kind, documents: Sequence[tuple[str, bytes]], config: Config) -> ImportPlan:
    """Reads saved pages of one list and decides whether they are all of it.

    Args:
        kind: which list the pages are from.
        documents: (name, content) of each page; the name is only used in messages.
        config: the count tolerances and the followers selectors.

    Raises:
        HtmlTooLargeError: a page over :data:`MAX_DOCUMENT_BYTES` or :data:`MAX_ELEMENTS`.
        HtmlImportError: no page given, not HTML, or not such a page (a login page, or
            nothing recognisable); the message names the file.
    """
    if not documents:
        raise HtmlImportError("no page given: save a followed-cams or followers page first")
    texts = [(name, _text(name, content)) for name, content in documents]
    if kind == "following":
        return _following(texts, config)
    return _followers(texts, config)


def _text(name: str, content: bytes) -> str:
    if len(content) > MAX_DOCUMENT_BYTES:
        raise HtmlTooLargeError(f"{name}: larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    text = content.decode("utf-8", errors="replace")
    if "<" not in text[:4096]:
        raise HtmlImportError(f"{name}: not an HTML page")
    page = Selector(text=text)
    root = root_of(page)
    count = int(root.xpath("count(//*)"))
    if count > MAX_ELEMENTS:
        raise HtmlTooLargeError(
            f"{name}: the page has {count} elements, more than the limit {MAX_ELEMENTS}"
        )
    if not root.xpath(_PAGE_LIKE):  # not a union: libxml2 merges one quadratically
        raise HtmlImportError(f"{name}: not an HTML page")
    if page.css(LOGIN_FORM_SELECTOR):
        raise HtmlImportError(f"{name}: this is the login page; save the page while logged in")
    return text


def _owner(text: str) -> str:
    """The logged-in account a saved page's header shows (lower case; "" if none)."""
    own = Selector(text=text).css(USERNAME_SELECTOR).xpath("string()").get(default="")
    return own.strip().lower()


def _following(texts: list[tuple[str, str]], config: Config) -> ImportPlan:
    rows: dict[str, RoomObservation] = {}
    total: int | None = None
    pages: list[str] = []
    account = ""
    for name, text in texts:
        account = account or _owner(text)
        page = parse_followed_page(text)
        if not page.rows and page.counts is None:
            raise HtmlImportError(
                f"{name}: no followed rooms and no followed counts: not a followed-cams page"
            )
        total = page.counts[1] if page.counts is not None else total
        pages.append(f"page {page.page} of {page.last_page}")
        for row in page.rows:
            rows.setdefault(row.username, row)
    tolerance = config.followed_cams.count_tolerance
    if total is None:
        reason = f"partial: no (online/total) count in the page header to check; {UNCHANGED}"
    elif abs(len(rows) - total) > tolerance:
        reason = (
            f"partial: {len(rows)} followed rooms on {', '.join(pages)}, the header counts "
            f"{total} (tolerance {tolerance}); {UNCHANGED}"
        )
    else:
        reason = f"complete: {len(rows)} followed rooms, as the header counts"
    return ImportPlan(
        kind="following",
        relation="following",
        observations=list(rows.values()),
        complete=reason.startswith("complete"),
        reason=reason,
        account=account,
    )


def _followers(texts: list[tuple[str, str]], config: Config) -> ImportPlan:
    names: dict[str, None] = {}
    sizes: dict[int, int] = {}
    last = 1
    count: int | None = None
    account = ""
    said_empty = False
    for name, text in texts:
        own = _owner(text)
        account = account or own
        page = parse_followers(text, config.followers, own=own)
        if not page.usernames and not (page.logged_in and (page.count == 0 or page.empty)):
            raise HtmlImportError(f"{name}: no followers found: not a followers page")
        sizes[page.page] = len(page.usernames)
        last = max(last, page.last_page)
        count = page.count if page.count is not None else count
        said_empty = said_empty or page.empty
        names.update(dict.fromkeys(page.usernames))
    if count is None and said_empty and not names:
        count = 0  # the site's empty-list message: its own word that nobody follows
    tolerance = config.followers.count_tolerance
    missing = sorted(set(range(1, last + 1)) - set(sizes))
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        reason = f"partial: page(s) {shown} of {last} not given; {UNCHANGED}"
    elif count is not None and abs(len(names) - count) > tolerance:
        reason = (
            f"partial: {len(names)} followers read, the page counts {count} "
            f"(tolerance {tolerance}); {UNCHANGED}"
        )
    elif count is None:
        # The crawl's rule: without a count on the page, paging proves nothing (a page cut
        # short looks like a last page); only the Stats API's follower count can.
        reason = (
            f"no follower count shown: {len(names)} followers, complete if the Stats API's "
            "follower count matches"
        )
    else:
        reason = f"complete: {len(names)} followers"
    return ImportPlan(
        kind="followers",
        relation="follower",
        observations=[RoomObservation(username=name) for name in names],
        complete=reason.startswith("complete"),
        reason=reason,
        by_stats=not missing and count is None,
        account=account,
    )


def observation_time(
    kind: Kind, saved_at: dt.datetime, db_now: dt.datetime, last_check: dt.datetime | None
) -> dt.datetime:
    """The time to record saved pages under: when they were saved, checked against the list.

    Args:
        kind: which list the pages are from.
        saved_at: when the pages were saved (time-zone aware).
        db_now: the database's clock now.
        last_check: the list's last complete check (None: never checked).

    Returns:
        ``saved_at``, or ``db_now`` if it is a little ahead (another machine's clock).

    Raises:
        SavedAtError: ``saved_at`` has no time zone, or lies in the future beyond
            :data:`FUTURE_MARGIN`; ``stale`` when it predates ``last_check``.
    """
    if saved_at.tzinfo is None:
        raise SavedAtError("saved_at: give a time zone, for example 2026-03-01T12:00:00Z")
    if saved_at > db_now + FUTURE_MARGIN:
        raise SavedAtError(
            f"saved_at: {_iso(saved_at)} is in the future (the database's clock says "
            f"{_iso(db_now)})"
        )
    if last_check is not None and saved_at < last_check:
        raise SavedAtError(
            f"the page was saved at {_iso(saved_at)}, before the last check of the "
            f"{_LISTS[kind]} at {_iso(last_check)}: importing it would roll follow state back; "
            "save the page again",
            stale=True,
        )
    return min(saved_at, db_now)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
