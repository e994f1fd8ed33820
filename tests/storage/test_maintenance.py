"""Upkeep: retention drops old raw partitions whole and keeps the rollups that summarise them;
due person summaries are recomputed in batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig
from storage.maintenance import apply_retention, prune_jobs, refresh_due_summaries
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


def _job(db: psycopg.Connection[Any], status: str, finished: dt.datetime | None, log: str) -> int:
    row = db.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status, queued_at, started_at, finished_at,"
        " log_path, stats) VALUES ('affiliate', 'schedule', %s, %s, %s, %s, %s,"
        " '{\"item_scraped_count\": 3}') RETURNING job_id",
        [status, finished or NOW, finished or NOW, finished, log or None],
    ).fetchone()
    assert row is not None
    return int(row[0])


NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


def test_finished_jobs_past_retention_go_and_a_follow_events_job_stays(
    db: psycopg.Connection[Any],
) -> None:
    old, recent = NOW - dt.timedelta(days=91), NOW - dt.timedelta(days=89)
    gone = _job(db, "succeeded", old, "/data/logs/job-a.log")
    failed = _job(db, "failed", old, "")
    remote = _job(db, "interrupted", old, "http://node1:6800/logs/roomwatch/affiliate/7.log")
    cited = _job(db, "succeeded", old, "/data/logs/job-c.log")
    kept = _job(db, "succeeded", recent, "/data/logs/job-k.log")
    running = _job(db, "running", None, "/data/logs/job-r.log")
    db.execute("UPDATE crawl_jobs SET queued_at = %s, started_at = %s", [old, old])
    write_affiliate_poll(db, [room("a")], observed_at=old, job_id=cited)
    db.execute("INSERT INTO accounts (account) VALUES ('owner') ON CONFLICT DO NOTHING")
    db.execute(
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source, job_id)"
        " SELECT 'owner', person_id, 'new_follower', %s, 'followers', %s FROM persons",
        [old, cited],
    )
    db.execute(
        "INSERT INTO source_polls (source, completed_at, job_id, rows_seen)"
        " VALUES ('affiliate', %s, %s, 1)",
        [old, gone],
    )
    totals = "SELECT spider, status, jobs FROM crawl_job_totals ORDER BY 1, 2"
    before = db.execute(totals).fetchall()

    pruned, logs = prune_jobs(db, DatabaseConfig(), now=NOW, batch=2)

    # The default keeps 90 days. The cited job stays without its log; only files are named.
    assert (pruned, sorted(logs)) == (4, sorted([gone, cited]))
    left = db.execute("SELECT job_id, log_path FROM crawl_jobs ORDER BY job_id").fetchall()
    assert left == [
        (cited, None),
        (kept, "/data/logs/job-k.log"),
        (running, "/data/logs/job-r.log"),
    ]
    assert failed not in {job for job, _ in left} and remote not in {job for job, _ in left}
    # The complete poll stays, without its job; the event keeps its job; the totals count on.
    assert db.execute("SELECT job_id FROM source_polls").fetchall() == [(None,)]
    assert db.execute("SELECT DISTINCT job_id FROM follow_events").fetchall() == [(cited,)]
    assert db.execute(totals).fetchall() == before
    assert prune_jobs(db, DatabaseConfig(), now=NOW) == (0, [])


def test_a_job_retention_of_zero_keeps_every_job(db: psycopg.Connection[Any]) -> None:
    _job(db, "succeeded", NOW - dt.timedelta(days=3000), "/data/logs/job-a.log")
    assert prune_jobs(db, DatabaseConfig(job_retention_days=0), now=NOW) == (0, [])
    assert db.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (1,)
