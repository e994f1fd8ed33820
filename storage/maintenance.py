"""Database upkeep run by the scheduling agent: retention, and person summaries that came due.

**Retention** drops raw history older than its configured age, whole partitions at a time.

Raw per-poll snapshots are kept ``database.snapshot_retention_days``; the hourly rollups that
summarise them are kept ``database.rollup_retention_days``; the owner's room events (chat and
private messages among them) ``events.retention_days``, a month partition at a time; CBHours
activity samples ``database.activity_retention_days`` if set (a month at a time; by default
they are kept, since a backfill may store years of them on purpose, and the daily totals are
kept either way).
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
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            now = row[0]
        assert now is not None
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
