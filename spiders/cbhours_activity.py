"""The ``cbhours_activity`` spider: 3-minute activity and daily totals of trophy persons.

For each person with a CBHours trophy it asks ``action=get_activity`` with details for the last
60 days (FORMATS.md §2.3), counted in local days of ``cbhours.tzo``; segment times are local to
that offset and stored in UTC. Segments are upserted per person and time, so re-running writes
nothing new. On first sight of a person (nothing stored yet), ``action=get_months`` (§2.4) says
which months CBHours has, and those older than the 60 days are fetched in windows of at most 60
days. A malformed answer fails its request (naming the field) and writes nothing from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import Response

from crawler.items import CbhoursActivityPage, NoTrophy
from formats.cbhours import WINDOW_DAYS, backfill_windows, decode_activity, decode_months
from roomwatch.config import Config
from spiders.cbhours_api import CbhoursSpider, usernames_arg
from storage.targets import cbhours_activity_targets, without_cbhours_activity

if TYPE_CHECKING:
    import psycopg


class CbhoursActivitySpider(CbhoursSpider):
    """The last 60 days of every trophy person, plus a backfill on first sight.

    Arguments (``-a``): ``usernames=a,b`` fetches exactly these persons; ``backfill=a,b`` forces
    the months backfill for these (for example after a backfill was interrupted).
    """

    name = "cbhours_activity"

    def __init__(
        self,
        *args: Any,
        targets: list[str] | None = None,
        backfill: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.targets: list[str] = targets or []
        self.backfill: set[str] = set(backfill or [])
        self.tzo = 0
        self.recent_start = dt.date.min

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The persons (``usernames``, else trophy targets) and who needs a backfill: those
        with nothing stored yet, and any named in ``backfill``."""
        names = usernames_arg(args, "usernames")
        if names is None:
            names = cbhours_activity_targets(conn, config.cbhours.targets)
        forced = usernames_arg(args, "backfill") or []
        names += [name for name in forced if name not in names]
        backfill = without_cbhours_activity(conn, names) | set(forced)
        return {"targets": names, "backfill": sorted(backfill)}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.tzo = self.config.cbhours.tzo
        today = (self.observed_at + dt.timedelta(minutes=self.tzo)).date()
        self.recent_start = today - dt.timedelta(days=WINDOW_DAYS - 1)
        if not self.targets:
            self.logger.info("no CBHours activity targets: nobody of interest has a trophy")
        for username in self.targets:
            yield self._activity(username, self.recent_start, today)
            if username in self.backfill:
                yield self.api_request(
                    [("action", "get_months"), ("domain", "cbhours"), ("username", username)],
                    self.parse_months,
                    f"get_months {username}",
                    username=username,
                )

    def _activity(self, username: str, first: dt.date, last: dt.date) -> scrapy.Request:
        return self.api_request(
            [
                ("action", "get_activity"),
                ("domain", "cbhours"),
                ("username", username),
                ("start_date", first.isoformat()),
                ("end_date", last.isoformat()),
                ("tzo", self.tzo),
                ("include_details", "true"),
            ],
            self.parse_activity,
            f"get_activity {username} {first}..{last}",
            username=username,
        )

    def parse_activity(self, response: Response, username: str) -> Iterator[Any]:
        answer = self.decode(response, partial(decode_activity, username=username, tzo=self.tzo))
        if answer is None:
            return
        if answer.no_trophy:
            yield NoTrophy(usernames=[username], checked_at=self.observed_at)
        elif answer.segments or answer.daily:
            yield CbhoursActivityPage(answer.segments, answer.daily, self.observed_at)

    def parse_months(self, response: Response, username: str) -> Iterator[scrapy.Request]:
        months = self.decode(response, decode_months)
        if months is None:
            return
        windows = backfill_windows(months, self.recent_start)
        self.crawler.stats.inc_value("roomwatch/backfill_windows", len(windows))
        for first, last in windows:
            yield self._activity(username, first, last)
