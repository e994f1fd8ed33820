"""The ``followers`` spider: who follows the account, from ``/accounts/followers/`` pages.

The page's real markup is unknown (FORMATS.md §3.9), so names are read by
``sessions.followers_parsing`` (configured selectors, else profile links), and pages are
followed through ``?page=N`` up to the highest page linked. Every page read is stored as
observations (source ``followers``: the persons exist, nothing more is shown).

Follow state changes only after a provably complete crawl: every page read, each page listing
someone, and, if the page shows a follower count, the names read matching it within
``followers.count_tolerance``. An empty list needs a positive sign (a count of 0 or the site's
empty-list message): a page 1 that lists nobody and says neither is a failed page, since taking
it for "no followers" would mark every follower lost. A crawl that had to fall back to bare
profile links is a guess and is trusted only when such a count confirms it; otherwise the job
fails saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from sessions.followers_parsing import FollowersPage, parse_followers
from spiders.follow_items import CompleteList, Followers
from spiders.logged_in import LoggedInSpider, PageProblem, PageVisit
from storage.follow_state import RoomObservation

PATH = "/accounts/followers/"


class FollowersSpider(LoggedInSpider):
    """One crawl of the followers pages (see the module docstring)."""

    name = "followers"
    first_path = PATH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: set[str] = set()
        self.count: int | None = None
        self.guessed = False

    async def walk(self) -> AsyncIterator[Any]:
        """Every followers page in turn; then the verdict."""
        page_no, last = 1, 1
        while page_no <= last:
            what = f"page {page_no} of the followers list"
            url = self.site_url(PATH, page_no)
            found, produced = await self.fetch(url, what, partial(self._read_page, page_no=page_no))
            for thing in produced:
                yield thing
            if found is None:
                return
            if found.usernames and not found.by_selector:
                self.guessed = True
                self.crawler.stats.inc_value("roomwatch/pages_read_from_profile_links")
            self.names.update(found.usernames)
            if found.usernames:
                rows = [RoomObservation(username=name) for name in found.usernames]
                yield Followers(rows, "followers", self.observed_at)
            page_no, last = page_no + 1, found.last_page
        self._conclude()

    async def _read_page(self, visit: PageVisit, *, page_no: int) -> FollowersPage | PageProblem:
        found = parse_followers(visit.html, self.config.followers, own=self.account)
        self.count = found.count if found.count is not None else self.count
        if not found.usernames and (page_no > 1 or found.last_page > 1 or (found.count or 0) > 0):
            return PageProblem("the page listed nobody")
        if not found.usernames and found.count is None and not found.empty:
            return PageProblem(
                "the page listed nobody and shows neither a follower count of 0 nor the site's "
                "empty-list message; follow state unchanged"
            )
        return found

    def _conclude(self) -> None:
        """Every page was read: complete if the count (when shown) agrees."""
        if self.failure is not None:
            return
        tolerance = self.config.followers.count_tolerance
        self.crawler.stats.set_value("roomwatch/followers_read", len(self.names))
        if self.count is not None and abs(len(self.names) - self.count) > tolerance:
            self.fail(
                f"incomplete: read {len(self.names)} followers but the page counts {self.count} "
                f"(tolerance {tolerance}); follow state unchanged"
            )
            return
        if self.guessed and self.count is None:
            self.fail(
                f"the followers page's markup was not recognised: {len(self.names)} names came "
                "from profile links, a guess no count confirms (set followers.username_selector);"
                " follow state unchanged"
            )
            return
        self.logger.info("job %s: followers complete, %d names", self.job_id, len(self.names))
        self.conclusion = CompleteList(
            "follower",
            sorted(self.names),
            "followers",
            self.observed_at,
            self.config.follow,
            self.confirm_loss,
        )
