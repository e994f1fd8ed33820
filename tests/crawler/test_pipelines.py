"""The storage pipeline: one writer per item type, and a store run again when PostgreSQL aborted
it to break a deadlock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import psycopg.errors
import pytest
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector

from crawler import items
from crawler.database import CrawlDatabase
from crawler.pipelines import ATTEMPTS, WRITERS, StoragePipeline, Writer
from roomwatch.config import load_config
from tests.support import as_url

ROOT = Path(__file__).parents[2]


class _Crawler:
    def __init__(self, db_url: str) -> None:
        self.settings = Settings(
            {
                "ROOMWATCH_CONFIG": load_config({"ROOMWATCH_DATABASE_URL": as_url(db_url)}),
                "ROOMWATCH_CONNINFO": db_url,
            }
        )
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]


class _Losing:
    """Writes a person, but the first ``losses`` attempts are chosen as the deadlock victim."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.attempts = 0

    def write(self, conn: psycopg.Connection[Any], job_id: int | None) -> int:
        self.attempts += 1
        with conn.transaction():
            conn.execute("INSERT INTO persons (username) VALUES ('once') ON CONFLICT DO NOTHING")
            if self.attempts <= self.losses:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
        return 1


def _write_losing(conn: psycopg.Connection[Any], item: _Losing, job_id: int | None) -> int:
    return item.write(conn, job_id)


@pytest.fixture
def crawler(db_url: str) -> _Crawler:
    return _Crawler(db_url)


@pytest.fixture
def pipeline(crawler: _Crawler) -> Iterator[StoragePipeline]:
    database = CrawlDatabase(
        crawler.settings["ROOMWATCH_CONNINFO"], crawler.settings["ROOMWATCH_CONFIG"].database
    )
    database.open()
    yield StoragePipeline(crawler, database, {_Losing: Writer("test_rows", _write_losing)})
    database.pool.close()


def test_a_deadlock_victim_is_stored_again(
    crawler: _Crawler, pipeline: StoragePipeline, db_url: str
) -> None:
    item = _Losing(losses=1)
    assert pipeline._write(item, None) == 1
    assert item.attempts == 2
    assert crawler.stats.get_value("roomwatch/store_retries") == 1
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM persons").fetchone() == (1,)


def test_repeated_deadlocks_fail_the_store(pipeline: StoragePipeline) -> None:
    item = _Losing(losses=ATTEMPTS)
    with pytest.raises(psycopg.errors.DeadlockDetected):
        pipeline._write(item, None)
    assert item.attempts == ATTEMPTS


def test_every_stored_item_has_one_writer() -> None:
    """An item type the pipeline does not know would pass through unstored, silently."""
    structs = {
        value
        for value in vars(items).values()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__module__ == items.__name__
    }
    # The images pipeline's input, and the base of the two list observations.
    not_stored = {items.ThumbnailItem, items.ListObservations}
    assert structs - not_stored == set(WRITERS)
    assert len({writer.kind for writer in WRITERS.values()}) == len(WRITERS)


def _burst(db_url: str, *args: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.crawler.stream_crawl", db_url, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout + done.stderr[-2000:]


def test_a_burst_of_stream_pages_is_written_in_order(db_url: str) -> None:
    """Scrapy hands the pipeline all 40 pages at once; each transaction must still come after
    the one of the page before (a page is never written before an earlier one)."""
    output = _burst(db_url, 40, 25)
    assert "failure: None" in output
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT split_part(event_id, '-', 2)::int, received_at FROM room_events"
        ).fetchall()
        position = conn.execute("SELECT last_event_id FROM room_event_streams").fetchone()
        follow_events = conn.execute("SELECT count(*) FROM follow_events").fetchone()
    assert len(rows) == 1000
    by_order = [received for _, received in sorted(rows)]
    assert by_order == sorted(by_order)  # received_at: the time its transaction began
    assert position is not None and position[0].endswith("-999")
    # Every follow and unfollow alternates the flag of one of seven fans: all 1,000 changed it.
    assert follow_events == (1000,)


def test_a_stream_stops_writing_after_a_failed_write(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE room_events_p203105 (x int)")  # page 3's month: no partition
    output = _burst(db_url, 6, 10, 3)
    assert "failure: storing room_events failed" in output
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM room_events").fetchone()
        position = conn.execute("SELECT last_event_id FROM room_event_streams").fetchone()
    # Pages 0-2 (or fewer, had the failure come first), never 4 or 5: the position stays at
    # the last event stored, so the next run reads page 3 again.
    assert stored is not None and stored[0] <= 30
    assert position is not None and position[0].endswith(f"-{stored[0] - 1}")
