"""The agent's retention run: finished crawl jobs past ``database.job_retention_days`` go, and
so do the logs they left in this agent's data dir, named from their ids and nothing else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from agent.runtime import apply_retention_now
from roomwatch.config import Config


def _job(conn: psycopg.Connection[Any], days_ago: int, log_path: str | None) -> int:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    row = conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status, queued_at, started_at, finished_at,"
        " log_path) VALUES ('affiliate', 'schedule', 'succeeded', %s, %s, %s, %s)"
        " RETURNING job_id",
        [at, at, at, log_path],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_old_jobs_go_with_their_logs_here_and_nothing_else(
    conn: psycopg.Connection[Any], db_url: str, app_config: Config, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"  # a row's path is never what gets deleted
    precious.write_text("keep")
    old = _job(conn, 120, str(precious))
    elsewhere = _job(conn, 120, "http://node1:6800/logs/roomwatch/affiliate/9.log")
    recent = _job(conn, 10, None)
    for job_id in (old, elsewhere, recent):
        log = app_config.job_log(job_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"job {job_id}\n")
    conn.execute(
        "UPDATE crawl_jobs SET log_path = %s WHERE job_id = %s",
        [str(app_config.job_log(recent)), recent],
    )

    apply_retention_now(db_url, app_config)

    jobs = conn.execute("SELECT job_id FROM crawl_jobs ORDER BY job_id").fetchall()
    assert jobs == [(recent,)]
    assert not app_config.job_log(old).exists()
    # The Scrapyd job's log was its node's: a file of that id here is not the agent's to delete.
    assert app_config.job_log(elsewhere).exists()
    assert app_config.job_log(recent).exists()
    assert precious.read_text() == "keep"
