"""Upkeep: retention drops old raw partitions whole and keeps the rollups that summarise them;
due person summaries are recomputed in batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig
from storage.maintenance import apply_retention, refresh_due_summaries
from storage.writers import write_affiliate_poll
from tests.factories import room


def test_old_snapshots_go_whole_partitions_and_rollups_stay(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    for days_ago in (20, 15, 1):
        when = now - dt.timedelta(days=days_ago)
        write_affiliate_poll(db, [room("a", num_users=5), room("b", num_users=7)], observed_at=when)
    dropped = apply_retention(db, DatabaseConfig(snapshot_retention_days=14), now=now)
    assert dropped == ["affiliate_api_snapshots_p20261104", "affiliate_api_snapshots_p20261109"]
    left = db.execute("SELECT count(*) FROM affiliate_api_snapshots").fetchone()
    assert left == (2,)
    hours = db.execute("SELECT count(*), sum(samples) FROM affiliate_hourly").fetchone()
    assert hours == (6, 6)
    assert apply_retention(db, DatabaseConfig(snapshot_retention_days=14), now=now) == []


def test_every_due_summary_is_recomputed_batch_by_batch(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO persons (username) SELECT 'p' || i FROM generate_series(1, 5) i")
    db.execute("UPDATE person_summary SET valid_until = '-infinity', watch = true")
    assert refresh_due_summaries(db, batch=2) == 5
    due = "SELECT count(*) FROM person_summary WHERE valid_until < now() OR watch"
    assert db.execute(due).fetchone() == (0,)
    assert refresh_due_summaries(db, batch=2) == 0
