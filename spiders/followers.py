"""The ``followers`` spider: who follows the account, from ``/accounts/followers/`` pages.

The page's real markup is unknown (FORMATS.md §3.9), so names, the follower count and the
paging are read by ``formats.followers`` (configured selectors first, then the common
ways), and pages are read through ``?page=N`` as :class:`FollowersWalk` directs: up to the
highest page linked or a "next" link, and past a full last page until one lists no one new
(or answers 404, as a Django paginator does past the end).
Every page read is stored as observations (source ``followers``: the persons exist, nothing
more is shown).

Follow state changes only after a provably complete crawl (:meth:`FollowersWalk.verdict`):
every page read, each linked page listing someone, and either the names matching the page's
follower count within ``followers.count_tolerance`` or, with no count shown, a short last page
or an empty one after it. An empty list needs a positive sign (a count of 0 or the site's
empty-list message): a page 1 that lists nobody and says neither is a failed page, since taking
it for "no followers" would mark every follower lost. A crawl that had to fall back to bare
profile links is a guess and is trusted only when such a count confirms it; otherwise the job
fails saying why. A complete list still passes the mass-change guard (``follow.max_loss_share``)
unless the crawl was started with ``-a confirm_loss=true``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from crawler.items import CompleteList, Followers
from formats.followers import FollowersPage, FollowersWalk, parse_followers
from spiders.logged_in import LoggedInSpider, PageProblem, PageVisit
from storage.records import RoomObservation

PATH = "/accounts/followers/"


class FollowersSpider(LoggedInSpider):
    """One crawl of the followers pages (see the module docstring)."""

    name = "followers"
    first_path = PATH
    walked: FollowersWalk

    async def walk(self) -> AsyncIterator[Any]:
        """Every followers page in turn (:class:`FollowersWalk` says which); then the verdict."""
        self.walked = FollowersWalk(self.config.followers.count_tolerance)
        page_no: int | None = 1
        while page_no is not None:
            what = f"page {page_no} of the followers list"
            url = self.site_url(PATH, page_no)
            found, produced = await self.fetch(
                url,
                what,
                partial(self._read_page, page_no=page_no),
                not_found_ok=self.walked.may_be_empty(page_no),  # past the end: 404 is empty
            )
            for thing in produced:
                yield thing
            if found is None:
                return
            if found.usernames and not found.by_selector:
                self.crawler.stats.inc_value("roomwatch/pages_read_from_profile_links")
            if found.usernames:
                rows = [RoomObservation(username=name) for name in found.usernames]
                yield Followers(rows, "followers", self.observed_at)
            page_no = self.walked.add(page_no, found)
        self._conclude()

    async def _read_page(self, visit: PageVisit, *, page_no: int) -> FollowersPage | PageProblem:
        if visit.status == 404:  # only past the pages linked (fetch's not_found_ok)
            return FollowersPage(
                usernames=[],
                count=None,
                page=page_no,
                last_page=1,
                by_selector=True,
                logged_in=True,
            )
        found = parse_followers(visit.html, self.config.followers, own=self.account)
        listed_nobody = page_no > 1 or found.last_page > 1 or (found.count or 0) > 0
        if not found.usernames and listed_nobody and not self.walked.may_be_empty(page_no):
            return PageProblem("the page listed nobody")
        if not found.usernames and page_no == 1 and found.count is None and not found.empty:
            return PageProblem(
                "the page listed nobody and shows neither a follower count of 0 nor the site's "
                "empty-list message; follow state unchanged"
            )
        return found

    def _conclude(self) -> None:
        """Every page was read: complete if :meth:`FollowersWalk.verdict` says so."""
        if self.failure is not None:
            return
        self.crawler.stats.set_value("roomwatch/followers_read", len(self.walked.names))
        problem = self.walked.verdict()
        if problem is not None:
            self.fail(f"{problem}; follow state unchanged")
            return
        self.logger.info(
            "job %s: followers complete, %d names (%s)",
            self.job_id,
            len(self.walked.names),
            self.walked.ended or "no paging",
        )
        self.conclusion = CompleteList(
            "follower",
            sorted(self.walked.names),
            "followers",
            self.observed_at,
            self.config.follow,
            self.confirm_loss,
        )
