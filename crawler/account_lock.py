"""One browser per account, held by the browser crawl itself (``storage/browser_lock.py``).

Wherever a browser crawl runs (a process of the agent's runner, ``roomwatch crawl``, a Scrapyd
node), it takes its session's account lock when the spider opens, before any request, on a
database connection of its own, and keeps it until the spider closes or the process dies. When
another crawl holds it, this one does not start: no browser is launched, the job fails at once
with finish reason ``account_busy`` and says why, and the account's next scheduled run tries
again (failing fast keeps a node's slot free; waiting could outlast the other crawl's timeout).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy import signals
from scrapy.exceptions import CloseSpider
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.database import CrawlDatabase
from roomwatch.logs import redact
from spiders.base import RoomwatchSpider
from storage.browser_lock import take_account_lock

if TYPE_CHECKING:
    from psycopg import Connection

log = logging.getLogger(__name__)
FINISH_REASON = "account_busy"


class AccountLock:
    """Extension of browser crawls: holds the account's lock for the whole crawl."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self._conn: Connection[Any] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> AccountLock:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    async def spider_opened(self, spider: Any) -> None:
        """Takes the lock, or closes the spider before its first request.

        The crawl never goes on without the lock: a spider given no account, or a database
        that cannot be asked, closes it too (an exception here would only be logged by Scrapy,
        and the browser would start unchecked).

        Raises:
            CloseSpider: another crawl holds the account (``account_busy``), or the lock could
                not be taken (``account_lock_failed``).
        """
        account = getattr(spider, "account", None)
        if not isinstance(account, str) or not account:
            self._refuse(spider, "the browser crawl was given no account", "account_lock_failed")
        try:
            taken = await maybe_deferred_to_future(deferToThread(self._take, account))
        except Exception as exc:  # noqa: BLE001 (any failure to lock refuses the crawl, by name)
            self._refuse(
                spider,
                f"cannot take the lock of the account {account}: {redact(str(exc))}",
                "account_lock_failed",
            )
        if not taken:
            self._refuse(
                spider,
                f"another browser crawl of the account {account} is running (one browser per "
                "account); this one did not start",
                FINISH_REASON,
            )

    @staticmethod
    def _refuse(spider: Any, message: str, reason: str) -> NoReturn:
        log.warning("%s", message)
        if isinstance(spider, RoomwatchSpider):
            spider.fail(message)
        raise CloseSpider(reason)

    def _take(self, account: str) -> bool:
        # Looked up now: extensions are made one by one, the pool's maybe after this one.
        conn = CrawlDatabase.of(self.crawler).own_connection()
        try:
            taken = take_account_lock(conn, account)
        except BaseException:
            conn.close()
            raise
        if taken:
            self._conn = conn
        else:
            conn.close()
        return taken

    async def spider_closed(self, spider: Any) -> None:
        """Lets the account go (closing the connection ends the lock with its session)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await maybe_deferred_to_future(deferToThread(conn.close))
