"""The storage pipeline: one writer per item type, and a store run again when PostgreSQL aborted
it to break a deadlock."""

from __future__ import annotations

from collections.abc import Iterator
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
