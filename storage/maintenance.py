"""Retention: drops raw history older than its configured age, whole partitions at a time.

Raw per-poll snapshots are kept ``database.snapshot_retention_days``; the hourly rollups that
summarise them are kept ``database.rollup_retention_days``. Dropping a partition is instant and
leaves no bloat, which is why history is partitioned by time (see docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig

# table -> which retention applies to it
RAW_TABLES = ("affiliate_api_snapshots", "cbhours_live_stats")
ROLLUP_TABLES = ("affiliate_hourly",)


def apply_retention(
    conn: psycopg.Connection[Any], settings: DatabaseConfig, now: dt.datetime | None = None
) -> list[str]:
    """Drops every partition whose rows are all past retention; returns the dropped names."""
    now = now or dt.datetime.now(dt.UTC)
    raw_cutoff = now - dt.timedelta(days=settings.snapshot_retention_days)
    rollup_cutoff = now - dt.timedelta(days=settings.rollup_retention_days)
    dropped: list[str] = []
    with conn.transaction():
        for table, cutoff in [(t, raw_cutoff) for t in RAW_TABLES] + [
            (t, rollup_cutoff) for t in ROLLUP_TABLES
        ]:
            rows = conn.execute(
                "SELECT * FROM roomwatch_drop_partitions_before(%s::regclass, %s)", [table, cutoff]
            ).fetchall()
            dropped += sorted(str(row[0]) for row in rows)
    return dropped
