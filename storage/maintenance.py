"""Database upkeep run by the scheduling agent: retention, and person summaries that came due.

**Retention** drops raw history older than its configured age, whole partitions at a time.

Raw per-poll snapshots are kept ``database.snapshot_retention_days``; the hourly rollups that
summarise them are kept ``database.rollup_retention_days``; the owner's room events (chat and
private messages among them) ``events.retention_days``, a month partition at a time; CBHours
activity samples ``database.activity_retention_days`` if set (a month at a time; by default
they are kept, since a backfill may store years of them on purpose, and the daily totals are
kept either way). Finished crawl jobs go after ``database.job_retention_days``
(:func:`prune_jobs`; the agent deletes the logs of those that ran on its machine).
Dropping a partition is instant and leaves no bloat, which is why history is partitioned by
time (see docs/architecture.md).

**Due summaries**: a ``person_summary`` row is valid until one of its person's observations leaves
the "recent" window (``v_person_summary`` says when). Lists merge the persons past that point
through the view, which is exact but slower; recomputing them every 10 seconds keeps them few.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig, EventsConfig
from storage.jobs import is_remote_log

# table -> which retention applies to it
RAW_TABLES = ("affiliate_api_snapshots", "cbhours_live_stats")
ROLLUP_TABLES = ("affiliate_hourly",)
EVENT_TABLES = ("room_events",)
ACTIVITY_TABLES = ("cbhours_activity",)


def apply_retention(
    conn: psycopg.Connection[Any],
    settings: DatabaseConfig,
    now: dt.datetime | None = None,
    *,
    events: EventsConfig | None = None,
) -> list[str]:
    """Drops every partition whose rows are all past retention; returns the dropped names.

    Args:
        settings: the retention of snapshots, rollups and CBHours activity samples.
        events: the retention of the room's events (``events.retention_days``); None: the
            default's.
        now: the time the cut-offs count back from; by default the database's ``now()``. Not
            this process's clock: the agent may run on a machine whose clock is off, and the
            rows were stamped by the database's (``storage/guards.py``); a clock running ahead
            here dropped history still inside its retention.
    """
    dropped: list[str] = []
    with conn.transaction():
        if now is None:
            now = _database_now(conn)
        raw_cutoff = now - dt.timedelta(days=settings.snapshot_retention_days)
        rollup_cutoff = now - dt.timedelta(days=settings.rollup_retention_days)
        events_cutoff = now - dt.timedelta(days=(events or EventsConfig()).retention_days)
        activity_cutoff = now - dt.timedelta(days=settings.activity_retention_days)
        for table, cutoff in (
            [(t, raw_cutoff) for t in RAW_TABLES]
            + [(t, rollup_cutoff) for t in ROLLUP_TABLES]
            + [(t, events_cutoff) for t in EVENT_TABLES]
            + [(t, activity_cutoff) for t in ACTIVITY_TABLES if settings.activity_retention_days]
        ):
            rows = conn.execute(
                "SELECT * FROM roomwatch_drop_partitions_before(%s::regclass, %s)", [table, cutoff]
            ).fetchall()
            dropped += sorted(str(row[0]) for row in rows)
    return dropped


# Finished jobs past the cut-off. One that recorded a follow event stays, as that event's
# provenance, and loses only its log; the others are deleted (their other references are set
# NULL by the foreign keys, through the indexes of migration 0028). Returns the jobs whose logs
# are to go: those with a log on a machine's disk (a Scrapyd node's is a URL, kept by Scrapyd's
# own jobs_to_keep). A batch at a time: the first run on a long-lived install has months of them.
_PRUNE_JOBS = """
WITH old AS (
    SELECT j.job_id, j.log_path,
           j.job_id IN (SELECT e.job_id FROM follow_events e WHERE e.job_id IS NOT NULL) AS cited
    FROM crawl_jobs j
    WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'interrupted')
      AND COALESCE(j.finished_at, j.started_at, j.queued_at) < %(cutoff)s
      AND (j.log_path IS NOT NULL
           OR j.job_id NOT IN (SELECT e.job_id FROM follow_events e WHERE e.job_id IS NOT NULL))
    ORDER BY j.job_id
    LIMIT %(batch)s
), kept AS (
    UPDATE crawl_jobs j SET log_path = NULL FROM old WHERE j.job_id = old.job_id AND old.cited
), gone AS (
    DELETE FROM crawl_jobs j USING old WHERE j.job_id = old.job_id AND NOT old.cited
)
SELECT job_id, log_path FROM old
"""


def prune_jobs(
    conn: psycopg.Connection[Any],
    settings: DatabaseConfig,
    now: dt.datetime | None = None,
    *,
    batch: int = 5000,
) -> tuple[int, list[int]]:
    """Deletes the crawl jobs that finished more than ``database.job_retention_days`` ago
    (0: none); a job that recorded a follow event keeps its row and loses its log.

    Returns how many jobs were pruned and the ids of those whose log was a file (the caller
    deletes the files it owns: see ``agent.runtime``).
    """
    if not settings.job_retention_days:
        return 0, []
    pruned, logs = 0, []
    while True:
        with conn.transaction():
            if now is None:
                now = _database_now(conn)
            cutoff = now - dt.timedelta(days=settings.job_retention_days)
            rows = conn.execute(_PRUNE_JOBS, {"cutoff": cutoff, "batch": batch}).fetchall()
        pruned += len(rows)
        logs += [int(job_id) for job_id, path in rows if path and not is_remote_log(str(path))]
        if len(rows) < batch:
            return pruned, logs


def _database_now(conn: psycopg.Connection[Any]) -> dt.datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def refresh_due_summaries(conn: psycopg.Connection[Any], batch: int = 2000) -> int:
    """Recomputes every person summary past its ``valid_until``, ``batch`` per transaction;
    returns how many."""
    total = 0
    while True:
        with conn.transaction():
            row = conn.execute("SELECT roomwatch_refresh_due_summaries(%s)", [batch]).fetchone()
        done = int(row[0]) if row else 0
        total += done
        if done < batch:
            return total
