"""roomwatch is a Scrapy project too: ``scrapy crawl SPIDER`` from the repository's root runs a
recorded crawl job with the config of the environment, against the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from roomwatch.catalog import SPIDERS
from roomwatch.config import Config
from storage.jobs import request_cancel
from tests.spiders.follow_support import wait_for
from upstream_sim.server import SimulatorServer

ROOT = Path(__file__).parents[2]


def _scrapy(*args: str) -> subprocess.CompletedProcess[str]:
    """``scrapy ARGS`` in the project's root, with this test's environment (``crawl_env``)."""
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_scrapy_list_names_every_spider() -> None:
    listed = _scrapy("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == sorted(SPIDERS)


def test_scrapy_crawl_affiliate_is_a_recorded_job_like_any_crawl(
    crawl_env: Config, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    done = _scrapy("crawl", "affiliate")
    assert done.returncode == 0, done.stderr
    row = db.execute(
        "SELECT job_id, status, trigger, items, requests, finished_at IS NOT NULL, log_path "
        "FROM crawl_jobs"
    ).fetchall()
    assert len(row) == 1
    job_id, status, trigger, items, requests, finished, log_path = row[0]
    assert (status, trigger, finished) == ("succeeded", "cli", True)
    assert items == {"affiliate_rooms": 1234, "affiliate_complete_polls": 1}
    assert requests == 3
    assert log_path == str(crawl_env.data_path / "logs" / f"job-{job_id}.log")
    assert "affiliate crawl starting" in Path(log_path).read_text()
    persons = db.execute("SELECT count(*) FROM persons").fetchone()
    assert persons == (1234,)
    polls = db.execute("SELECT count(*) FROM source_polls WHERE source = 'affiliate'").fetchone()
    assert polls == (1,)


def test_scrapy_crawl_refuses_an_argument_off_the_allow_list(
    crawl_env: Config, db: psycopg.Connection[Any]
) -> None:
    refused = _scrapy("crawl", "affiliate", "-a", "first_path=/elsewhere")
    assert refused.returncode == 1
    assert "first_path: not an argument of the affiliate spider" in refused.stderr
    assert db.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (0,)


def test_a_failed_scrapy_crawl_exits_non_zero_and_records_why(
    crawl_env: Config,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROOMWATCH_AFFILIATE_WM")
    failed = _scrapy("crawl", "affiliate")
    assert failed.returncode == 1
    row = db.execute("SELECT status, error_message FROM crawl_jobs").fetchone()
    assert row is not None
    assert row[0] == "failed"
    assert "affiliate.wm" in row[1]


def test_a_scrapy_crawl_by_hand_stops_on_a_cancel_request(
    crawl_env: Config,
    conn: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It supervises itself: a cancel request (API, web page) ends it as a runner would."""
    sim.state.site.add_account("owner", "pw", followers=1)
    monkeypatch.setenv("ROOMWATCH_EVENTS_URL", sim.events_url("owner"))
    monkeypatch.setenv("ROOMWATCH_EVENTS_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ROOMWATCH_EVENTS_TIMEOUT_SECONDS", "1")
    crawl = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", "room_events", "-a", "run_seconds=600"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM crawl_jobs WHERE status = 'running' AND requests > 0"
                ).fetchone()
                == (1,)
            ),
            60,
            "the stream to run",
        )
        row = conn.execute("SELECT job_id, pid FROM crawl_jobs").fetchone()
        assert row is not None
        assert row[1] == crawl.pid  # it is its own supervisor
        request_cancel(conn, int(row[0]))
        assert crawl.wait(30) != 0
    finally:
        crawl.kill()
    assert conn.execute("SELECT status, error_message FROM crawl_jobs").fetchone() == (
        "cancelled",
        "cancelled on request",
    )
