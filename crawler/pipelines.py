"""The storage pipeline: the one component that writes what a crawl yields.

Each item type has its writer (:data:`WRITERS`, item type -> :class:`Writer`); the pipeline runs
it in a worker thread with a connection of the crawl's pool (``crawler/database.py``), merges
small :class:`~crawler.items.Batchable` items into bigger writes, writes
:class:`~crawler.items.Streamed` items (the Events API's pages) one at a time in arrival order,
runs a write again when PostgreSQL aborted it to break a deadlock, and stores the spider's
conclusion at the end, but only after a crawl that finished without a failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import reduce
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import signals
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from crawler.database import CrawlDatabase
from crawler.items import (
    AffiliatePage,
    AffiliatePollComplete,
    Batchable,
    CbhoursActivityPage,
    CbhoursLivePage,
    CompleteList,
    FollowedRooms,
    Followers,
    ListObservations,
    NoTrophy,
    RoomEventsPage,
    RoomStatsAnswer,
    SessionChecked,
    StoredThumbnails,
    Streamed,
)
from roomwatch.errors import CountUnconfirmed, FollowLossHeld
from sessions.store import record_status
from spiders.base import RoomwatchSpider
from storage.database import TRANSIENT_ERRORS
from storage.follow_state import reconcile, record_observations
from storage.images import record_thumbnails
from storage.records import WriteResult
from storage.room_events import write_room_events
from storage.writers import (
    conclude_affiliate_poll,
    mark_without_trophy,
    write_affiliate_poll,
    write_cbhours_activity,
    write_cbhours_live,
    write_room_stats,
)

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[Any]

log = logging.getLogger(__name__)
# Writers of different crawls touch the same persons (and their summaries) in different orders;
# PostgreSQL then aborts one of two deadlocked transactions. Each store is one idempotent
# transaction, so running it again is safe.
ATTEMPTS = 3


class Writer(NamedTuple):
    """How one item type is stored.

    Attributes:
        kind: counted in the job's ``items`` under this name (e.g. ``affiliate_rooms``).
        write: writes the item in one transaction, given a connection and the job id; returns
            the rows it stands for, or the writer's result (rows stored, and rows the database
            refused and set aside).
    """

    kind: str
    write: Callable[[Connection, Any, int | None], int | WriteResult]


def _affiliate_page(conn: Connection, item: AffiliatePage, job_id: int | None) -> WriteResult:
    return write_affiliate_poll(conn, item.rooms, observed_at=item.observed_at, job_id=job_id)


def _affiliate_complete(conn: Connection, item: AffiliatePollComplete, job_id: int | None) -> int:
    conclude_affiliate_poll(conn, item.observed_at, job_id, item.rooms_seen, item.seen)
    return 1


def _thumbnails(conn: Connection, item: StoredThumbnails, job_id: int | None) -> int:
    return record_thumbnails(conn, item.thumbnails)


def _cbhours_live(conn: Connection, item: CbhoursLivePage, job_id: int | None) -> WriteResult:
    return write_cbhours_live(conn, item.rows, observed_at=item.observed_at, job_id=job_id)


def _cbhours_activity(
    conn: Connection, item: CbhoursActivityPage, job_id: int | None
) -> WriteResult:
    return write_cbhours_activity(
        conn, item.segments, item.daily, observed_at=item.observed_at, job_id=job_id
    )


def _no_trophy(conn: Connection, item: NoTrophy, job_id: int | None) -> int:
    return mark_without_trophy(conn, item.usernames, item.checked_at)


def _session_checked(conn: Connection, item: SessionChecked, job_id: int | None) -> int:
    record_status(conn, item.session_id, item.status)
    return 1


def _room_events(conn: Connection, item: RoomEventsPage, job_id: int | None) -> WriteResult:
    return write_room_events(conn, item.account, item.events, item.last_event_id, job_id=job_id)


def _observations(conn: Connection, item: ListObservations, job_id: int | None) -> int:
    return record_observations(
        conn, item.observations, source=item.source, observed_at=item.observed_at
    )


def _complete_list(conn: Connection, item: CompleteList, job_id: int | None) -> int:
    try:
        reconcile(
            conn,
            item.relation,
            item.usernames,
            account=item.account,
            checked_at=item.observed_at,
            source=item.source,
            job_id=job_id,
            limits=item.limits,
            confirm_loss=item.confirm_loss,
            count_check=item.count_check,
        )
    except FollowLossHeld as exc:
        # The source of a crawl's list is its spider's name.
        raise FollowLossHeld(
            f"{exc}; run `roomwatch crawl {item.source} -a confirm_loss=true` to confirm"
        ) from None
    return 1


def _room_stats(conn: Connection, item: RoomStatsAnswer, job_id: int | None) -> int:
    return write_room_stats(conn, item.row, observed_at=item.observed_at, job_id=job_id)


WRITERS: Mapping[type[Any], Writer] = {
    AffiliatePage: Writer("affiliate_rooms", _affiliate_page),
    AffiliatePollComplete: Writer("affiliate_complete_polls", _affiliate_complete),
    StoredThumbnails: Writer("images", _thumbnails),
    CbhoursLivePage: Writer("cbhours_live", _cbhours_live),
    CbhoursActivityPage: Writer("cbhours_activity", _cbhours_activity),
    NoTrophy: Writer("cbhours_no_trophy", _no_trophy),
    SessionChecked: Writer("session_checks", _session_checked),
    FollowedRooms: Writer("followed_rooms", _observations),
    Followers: Writer("followers", _observations),
    CompleteList: Writer("complete_lists", _complete_list),
    RoomEventsPage: Writer("room_events", _room_events),
    RoomStatsAnswer: Writer("room_stats", _room_stats),
}
"""Every item type the pipeline stores, and its writer; other items pass through untouched
(``ThumbnailItem`` is the images pipeline's)."""


class _Stream:
    """The writes of one :class:`Streamed` item type: what waits, and whether one runs."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Streamed, Deferred[None]]] = []
        self.writing = False
        self.broken = False


class StoragePipeline:
    """Hands items to their writers off the reactor thread, one transaction each.

    A failed write fails the crawl (the job ends ``failed`` with the database's reason) but the
    other items are still written; the conclusion is stored only if nothing failed.
    """

    def __init__(
        self, crawler: Any, database: CrawlDatabase, writers: Mapping[type[Any], Writer] = WRITERS
    ) -> None:
        self.crawler = crawler
        self.database = database
        self.writers = writers
        self._pending: dict[type[Any], Batchable] = {}
        self._streams: dict[type[Any], _Stream] = {}
        self._closed: Deferred[None] = Deferred()

    @classmethod
    def from_crawler(cls, crawler: Any) -> StoragePipeline:
        pipeline = cls(crawler, CrawlDatabase.of(crawler))
        # The last batches and the conclusion are written as the spider closes.
        pipeline.database.close_after(pipeline._closed)
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    async def process_item(self, item: Any) -> Any:
        if type(item) not in self.writers:
            return item
        if isinstance(item, Batchable):
            # Many small pages cost one transaction each; merged, they cost one per batch.
            pending = self._pending.get(type(item))
            item = pending.merge(item) if pending is not None else item
            if item.rows < item.batch_rows:
                self._pending[type(item)] = item
                return item
            self._pending.pop(type(item), None)
        elif isinstance(item, Streamed):
            await self._stream(item, self.crawler.spider)
            return item
        await self._store(item, self.crawler.spider)
        return item

    async def _stream(self, item: Streamed, spider: RoomwatchSpider) -> None:
        """Writes ``item`` after the items of its stream that came before it; returns once it
        is stored (or skipped). Scrapy runs many ``process_item`` calls at once (the items of
        one answer, and of the next answer while this one is written), so without this the
        pages of a stream would be written concurrently, in any order. Whoever finds no write
        running writes everything waiting, joined into one write, until nothing waits: the
        first page of a quiet stream is written at once, and a burst costs one transaction per
        round rather than one per page."""
        stream = self._streams.setdefault(type(item), _Stream())
        stored: Deferred[None] = Deferred()
        stream.waiting.append((item, stored))
        if not stream.writing:
            stream.writing = True
            try:
                while stream.waiting:
                    batch, stream.waiting = stream.waiting, []
                    try:
                        if not stream.broken:
                            joined = reduce(lambda a, b: a.then(b), (i for i, _ in batch))
                            stream.broken = not await self._store(joined, spider)
                        elif batch:
                            log.warning(
                                "%d %s not stored: an earlier write of the stream failed (the "
                                "next run resumes after the last one stored)",
                                len(batch),
                                type(item).__name__,
                            )
                    finally:
                        for _, done in batch:
                            done.callback(None)
            finally:
                stream.writing = False
        await maybe_deferred_to_future(stored)

    async def spider_closed(self, spider: RoomwatchSpider, reason: str) -> None:
        """Stores what is still batched, then the conclusion, but only after a crawl that ran
        to its end without a failure."""
        try:
            for item in list(self._pending.values()):
                await self._store(item, spider)
            self._pending.clear()
            if spider.conclusion is not None and spider.failure is None and reason == "finished":
                await self._store(spider.conclusion, spider)
        finally:
            self._closed.callback(None)

    async def _store(self, item: Any, spider: RoomwatchSpider) -> bool:
        """Writes ``item``; False if that failed (the crawl then fails with the reason)."""
        kind = self.writers[type(item)].kind
        try:
            rows = await maybe_deferred_to_future(deferToThread(self._write, item, spider.job_id))
        except FollowLossHeld as exc:  # the guard's own words: why, and how to confirm
            spider.fail(str(exc))
            return False
        except CountUnconfirmed as exc:  # no Stats API count confirms a count-less list
            spider.fail(f"{exc}; follow state unchanged")
            return False
        except Exception as exc:  # noqa: BLE001 (any database error fails the crawl, with its reason)
            spider.fail(f"storing {kind} failed: {str(exc).strip().splitlines()[0]}")
            return False
        if isinstance(rows, WriteResult):
            # Rows the database refused were set aside (each logged with its username by the
            # writer) and the rest stored: counted, they do not fail the crawl, whose other
            # rows and conclusion stay true (see storage/guards.py, conclude_affiliate_poll).
            if rows.set_aside:
                self.crawler.stats.inc_value("roomwatch/rows_set_aside", len(rows.set_aside))
            rows = rows.inserted
        self.crawler.stats.inc_value(f"items/{kind}", rows)
        return True

    def _write(self, item: Any, job_id: int | None) -> int | WriteResult:
        writer = self.writers[type(item)]
        started = time.perf_counter()
        try:
            for _ in range(ATTEMPTS - 1):
                try:
                    return self._write_once(writer, item, job_id)
                except TRANSIENT_ERRORS as exc:
                    log.info("storing %s: %s; trying again", writer.kind, type(exc).__name__)
                    self.crawler.stats.inc_value("roomwatch/store_retries")
            # The last attempt's error fails the crawl.
            return self._write_once(writer, item, job_id)
        finally:
            # Time spent storing, summed over items (writes overlap with downloads).
            self.crawler.stats.inc_value("roomwatch/store_seconds", time.perf_counter() - started)

    def _write_once(self, writer: Writer, item: Any, job_id: int | None) -> int | WriteResult:
        with self.database.connection() as conn:
            return writer.write(conn, item, job_id)
