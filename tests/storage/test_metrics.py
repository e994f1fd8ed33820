"""The crawl totals behind ``GET /metrics`` (migration 0022): carried over from the jobs an
older schema finished, kept by the triggers whoever writes the job rows."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from storage.metrics import Figures, read_figures
from storage.migrator import apply_migrations, bundled_migrations

TOTALS = "crawl_stat_totals"


def _figures(conninfo: str) -> Figures:
    async def read() -> Figures:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            return await read_figures(conn, 2.0)

    return asyncio.run(read())


def _job(conn: psycopg.Connection[Any], spider: str, status: str, stats: dict[str, Any]) -> int:
    row = conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status, stats) "
        "VALUES (%s, 'cli', %s, %s) RETURNING job_id",
        [spider, status, Jsonb(stats)],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _totals(figures: Figures, spider: str) -> dict[str, float]:
    return {s.stat: s.value for s in figures.stats if s.spider == spider}


def test_the_migration_counts_the_jobs_an_older_schema_finished(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        apply_migrations(conn, [m for m in bundled_migrations() if m.version < 22])
        _job(conn, "affiliate", "succeeded", {"items/affiliate_rooms": 10, "retry/count": 1})
        _job(conn, "affiliate", "failed", {"items/affiliate_rooms": 5, "finish_reason": "x"})
        _job(conn, "affiliate", "running", {"items/affiliate_rooms": 2})
        _job(conn, "room_stats", "succeeded", {})
        up_to_22 = [m for m in bundled_migrations() if m.version <= 22]
        assert apply_migrations(conn, up_to_22) == ["0022_crawl_totals.sql"]
        assert sorted(conn.execute("SELECT spider, status, jobs FROM crawl_job_totals")) == [
            ("affiliate", "failed", 1),
            ("affiliate", "succeeded", 1),
            ("room_stats", "succeeded", 1),
        ]
        apply_migrations(conn, bundled_migrations())  # the figures read today's schema
    figures = _figures(empty_db)
    # Finished jobs from the totals, the running one from its row.
    assert _totals(figures, "affiliate") == {"items/affiliate_rooms": 17, "retry/count": 1}
    assert sorted((j.spider, j.status, j.jobs) for j in figures.jobs) == [
        ("affiliate", "failed", 1),
        ("affiliate", "running", 1),
        ("affiliate", "succeeded", 1),
        ("room_stats", "succeeded", 1),
    ]


def test_job_totals_are_split_by_account_and_never_go_back(empty_db: str) -> None:
    """Migration 0026: the finished jobs already counted are split by their rows' accounts;
    what no row explains any more (a deleted row) stays counted, under no account."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        apply_migrations(conn, [m for m in bundled_migrations() if m.version < 26])
        conn.execute("INSERT INTO accounts (account) VALUES ('studio_a'), ('studio_b')")
        for account, status in [
            ("studio_a", "succeeded"), ("studio_a", "succeeded"), ("studio_b", "failed"),
            (None, "succeeded"),
        ]:  # fmt: skip
            conn.execute(
                "INSERT INTO crawl_jobs (spider, trigger, status, account) "
                "VALUES ('followers', 'cli', %s, %s)",
                [status, account],
            )
        gone = _job(conn, "followers", "succeeded", {})
        conn.execute("DELETE FROM crawl_jobs WHERE job_id = %s", [gone])
        applied = apply_migrations(conn, [m for m in bundled_migrations() if m.version <= 26])
        assert applied == ["0026_job_totals_by_account.sql"]
        conn.execute(
            "INSERT INTO crawl_jobs (spider, trigger, status, account) "
            "VALUES ('followers', 'cli', 'running', 'studio_b'), "
            "('followers', 'cli', 'failed', 'studio_b')"
        )
    jobs = sorted((j.account, j.status, j.jobs) for j in _figures(empty_db).jobs)
    assert jobs == [
        ("", "succeeded", 2),  # the job of no account and the deleted one
        ("studio_a", "succeeded", 2),
        ("studio_b", "failed", 2),
        ("studio_b", "running", 1),
    ]


def test_a_final_row_changed_later_moves_its_figures(db_url: str) -> None:
    """Whoever changes a finished job's stats or status (a late writer, a repair by hand), the
    totals stay the sum over the rows; a deleted row stays counted (counters never go back)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        job = _job(conn, "followers", "running", {"retry/count": 1})
        conn.execute(
            "UPDATE crawl_jobs SET stats = %s WHERE job_id = %s", [Jsonb({"retry/count": 4}), job]
        )
        assert _totals(_figures(db_url), "followers") == {"retry/count": 4}
        conn.execute("UPDATE crawl_jobs SET status = 'failed' WHERE job_id = %s", [job])
        conn.execute(
            "UPDATE crawl_jobs SET stats = %s WHERE job_id = %s", [Jsonb({"retry/count": 6}), job]
        )
        conn.execute("UPDATE crawl_jobs SET status = 'interrupted' WHERE job_id = %s", [job])
        conn.execute("DELETE FROM crawl_jobs WHERE job_id = %s", [job])
    figures = _figures(db_url)
    assert _totals(figures, "followers") == {"retry/count": 6}
    assert [(j.status, j.jobs) for j in figures.jobs] == [("interrupted", 1)]
