"""Upkeep: retention drops old raw partitions whole and keeps the rollups that summarise them;
due person summaries are recomputed in batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig
from storage.maintenance import apply_retention, refresh_due_summaries
from storage.records import DailyActivity
from storage.writers import write_affiliate_poll, write_cbhours_activity
from tests.factories import room, segment


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


def test_activity_samples_are_kept_unless_a_retention_is_set(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    months_ago = (now - dt.timedelta(days=100), now - dt.timedelta(days=40), now)
    write_cbhours_activity(
        db,
        [segment("a", at, rank=10, followers=100) for at in months_ago],
        [DailyActivity(username="a", day=at.date(), online_minutes=30, tzo=0) for at in months_ago],
        observed_at=now,
    )
    kept = DatabaseConfig()  # no activity retention: kept for ever
    assert not [t for t in apply_retention(db, kept, now=now) if "cbhours_activity" in t]
    assert db.execute("SELECT count(*) FROM cbhours_activity").fetchone() == (3,)

    dropped = apply_retention(db, DatabaseConfig(activity_retention_days=60), now=now)
    # August went whole; October holds a sample 40 days old, so it stays, as November does.
    assert [t for t in dropped if "cbhours_activity" in t] == ["cbhours_activity_p202608"]
    left = db.execute("SELECT segment_at FROM cbhours_activity ORDER BY 1").fetchall()
    assert [row[0] for row in left] == list(months_ago[1:])
    daily = db.execute("SELECT count(*) FROM cbhours_daily_activity").fetchone()
    assert daily == (3,)
