"""The ``cbhours_live`` spider: live stats of persons of interest from CBHours ``get_live``.

``action=get_live`` takes up to 50 usernames per request (FORMATS.md §2.2). ``Online`` rows are
stored with rank, grank, viewers, followers, show, subject and tags; ``Offline`` rows carry
their status only. CBHours answers only for models in its trophy database: a name it leaves
out, or an ``Error Code:300`` answer, marks the person as without trophy (with the check time),
so polls skip them until ``cbhours.trophy_recheck_days`` have passed. A request whose answer
does not decode fails (naming the field) and writes nothing; the others are still stored, and
the job ends ``failed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import Response

from crawler.items import CbhoursLivePage, NoTrophy
from formats.cbhours import decode_live
from roomwatch.config import Config
from spiders.cbhours_api import CbhoursSpider, usernames_arg
from storage.targets import cbhours_live_targets

if TYPE_CHECKING:
    import psycopg

BATCH_SIZE = 50  # the API's limit per get_live request


class CbhoursLiveSpider(CbhoursSpider):
    """One refresh of the live stats of every CBHours target, 50 names per request.

    Arguments (``-a``): ``usernames=a,b`` asks about exactly these persons instead.
    """

    name = "cbhours_live"

    def __init__(self, *args: Any, targets: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets: list[str] = targets or []

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The persons to ask about: ``usernames``, else the targets (``storage/targets.py``)."""
        names = usernames_arg(args, "usernames")
        if names is None:
            settings = config.cbhours
            names = cbhours_live_targets(conn, settings.targets, settings.trophy_recheck_days)
        return {"targets": names}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not self.targets:
            self.logger.info("no CBHours targets: nobody of interest has or may have a trophy")
        for number, first in enumerate(range(0, len(self.targets), BATCH_SIZE), start=1):
            batch = self.targets[first : first + BATCH_SIZE]
            yield self.api_request(
                [("action", "get_live"), ("usernames", ",".join(batch))],
                self.parse_live,
                f"get_live batch {number}",
                names=batch,
            )

    def parse_live(self, response: Response, names: list[str]) -> Iterator[Any]:
        answer = self.decode(response, decode_live)
        if answer is None:
            return
        if answer.rows:
            yield CbhoursLivePage(rows=answer.rows, observed_at=self.observed_at)
        answered = {row.username for row in answer.rows}
        unknown = [name for name in names if name not in answered]
        if unknown:
            yield NoTrophy(usernames=unknown, checked_at=self.observed_at)
