"""The ``followers`` spider: who follows the account, from ``/accounts/followers/`` pages.

The page's real markup is unknown (FORMATS.md §3.9), so names, the follower count and the
paging are read by ``formats.followers`` (configured selectors first, then the common
ways), and pages are read through ``?page=N`` as :class:`FollowersWalk` directs: up to the
highest page linked or a "next" link, and past a full last page until one lists no one new
(or answers 404, as a Django paginator does past the end).
Every page read is stored as observations (source ``followers``: the persons exist, nothing
more is shown).

Follow state changes only after a provably complete crawl: every page read, each linked page
listing someone, and the names matching a follower count within ``followers.count_tolerance``:

* the page's own count, when it shows one (:meth:`FollowersWalk.verdict`);
* otherwise the Stats API's (``room_stats.num_followers`` of the crawl's account, stored by the
  ``room_stats`` spider every 5 minutes), observed within ``stats.count_max_age_minutes`` of
  the conclusion. Paging alone (a short last page, an empty one after it) proves nothing: a
  page cut short looks the same. The count is read and compared in the transaction that
  writes the conclusion (``storage/follow_guard.py``), so it is the newest one stored then.
  With none that recent, or one that does not match, the job fails saying which ("no Stats API
  follower count of <account> was observed in the last 10 minutes: set stats.url, or run
  room_stats") and follow state is unchanged.

An empty list needs a positive sign (a count of 0, or the site's empty-list message on page 1,
which counts as a count of 0): a page 1
that lists nobody and says neither is a failed page, since taking it for "no followers" would
mark every follower lost. A crawl that had to fall back to bare profile links is a guess,
trusted only when a count (the page's or the Stats API's) confirms it. A complete list still
passes the mass-change guard (``follow.max_loss_share``) unless the crawl was started with
``-a confirm_loss=true``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from crawler.items import CompleteList, Followers
from formats.followers import FollowersPage, FollowersWalk, parse_followers
from spiders.logged_in import LoggedInSpider, PageProblem, PageVisit
from storage.follow_state import CountCheck
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
        """Every page was read: complete if the page's count confirms it
        (:meth:`FollowersWalk.verdict`); with no count shown, the conclusion asks the Stats
        API's count to, as it is stored (``count_check``)."""
        if self.failure is not None:
            return
        self.crawler.stats.set_value("roomwatch/followers_read", len(self.walked.names))
        problem = self.walked.verdict()
        if problem is None and not self.walked.counted:
            problem = self._stats_account_problem()
        if problem is not None:
            self.fail(f"{problem}; follow state unchanged")
            return
        read = len(self.walked.names)
        count_check = None
        if self.walked.counted:
            self.logger.info(
                "job %s: followers complete, %d names as the page counts (%s)",
                self.job_id,
                read,
                self.walked.summary(),
            )
        else:
            count_check = CountCheck(
                account=self.account.lower(),
                tolerance=self.config.followers.count_tolerance,
                max_age_minutes=self.config.stats.count_max_age_minutes,
            )
            self.logger.info(
                "job %s: %d followers read, no count on the page (%s): complete if the Stats "
                "API's count matches",
                self.job_id,
                read,
                self.walked.summary(),
            )
        self.conclusion = CompleteList(
            "follower",
            sorted(self.walked.names),
            "followers",
            self.observed_at,
            self.config.follow,
            self.confirm_loss,
            count_check,
            account=self.account,
        )

    def _stats_account_problem(self) -> str | None:
        """The Stats API counts only its own account's followers: a URL naming another account
        than the session's can never confirm this list."""
        counted, mine = list(self.config.stats.streams), self.account.lower()
        if counted and mine not in counted:
            return (
                f"the followers page shows no count, and stats.url names another account "
                f"({', '.join(counted)}) than the session's ({mine}): its follower count "
                "cannot confirm this list"
            )
        return None
