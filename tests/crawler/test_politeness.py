"""Politeness toward CBHours: the pace shared by every crawl (in the database) and back-off on
429/5xx."""

from __future__ import annotations

import datetime as dt
import threading
import time
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from agent.runner import CrawlRunner
from crawler.middlewares import backoff_seconds, describe_failure, retry_after_seconds
from roomwatch.config import BackoffConfig, Config
from storage.jobs import Job
from tests.spiders.cbhours_support import add_persons, api_requests
from tests.support import CbhoursCrawls, crawl
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = time.time()
    assert retry_after_seconds(b"3") == 3.0
    in_ten = format_datetime(dt.datetime.fromtimestamp(now + 10, dt.UTC), usegmt=True)
    assert retry_after_seconds(in_ten.encode(), now=now) == pytest.approx(10, abs=1)
    past = format_datetime(dt.datetime.fromtimestamp(now - 10, dt.UTC), usegmt=True)
    assert retry_after_seconds(past, now=now) == 0.0
    assert retry_after_seconds(b"soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    settings = BackoffConfig(base_seconds=1.0, factor=2.0, cap_seconds=5.0)
    assert [backoff_seconds(settings, n, None) for n in range(5)] == [1, 2, 4, 5, 5]
    assert backoff_seconds(settings, 0, 3.0) == 3.0  # Retry-After wins...
    assert backoff_seconds(settings, 0, 100.0) == 5.0  # ...up to the cap


def test_a_failure_names_path_and_status_never_the_query() -> None:
    request = Request("http://h/api.php?action=get_live&wm=secret", meta={"retry_times": 4})
    response = Response(request.url, status=429, request=request)
    failure = Failure(HttpError(response, "Ignoring non-200 response"))  # type: ignore[no-untyped-call]
    assert describe_failure(failure) == "/api.php: HTTP 429 after 4 retries"
    error = TimeoutError(f"Getting {request.url} took longer than 30 seconds.")
    timeout = Failure(error)  # type: ignore[no-untyped-call]
    timeout.request = request  # type: ignore[attr-defined]  # as Scrapy sets it for errbacks
    described = describe_failure(timeout)
    assert described.startswith("/api.php: TimeoutError: Getting /api.php took longer")
    assert "secret" not in described


def _run_both(configs: dict[str, Config], db_url: str) -> dict[str, Job]:
    """Runs a crawl of each spider at once, each with its own config (its own data dir)."""
    jobs = [
        CrawlRunner(config, db_url).submit(spider, {}, "cli") for spider, config in configs.items()
    ]
    finished: dict[str, Job] = {}

    def run(job: Job) -> None:
        finished[job.spider] = CrawlRunner(configs[job.spider], db_url).run(job.job_id)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return finished


def test_two_concurrent_cbhours_crawls_keep_one_request_per_second(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    tmp_path: Path,
) -> None:
    # The real thing: the simulator's limit of 1 request/s, the crawls' default pace. Each
    # crawl process has a data dir of its own, as on two machines: the pace is the database's.
    config = cbhours(interval=None)
    assert config.cbhours.min_interval_seconds == 1.04
    configs = {
        spider: msgspec.structs.replace(config, data_dir=str(tmp_path / spider))
        for spider in ("cbhours_live", "cbhours_activity")
    }
    assert sim.state.cbhours.rate_limit.view().interval == 1.0
    # Enough live batches (8 at 1 req/s) that the two crawls overlap even when one process
    # starts seconds after the other on a loaded machine.
    names = [f"u{i:03d}" for i in range(400)]
    today = dt.datetime.now(dt.UTC).date()
    cbhours = sim.state.cbhours
    cbhours.add_trophy(*names)
    for name in ("u000", "u001"):
        cbhours.seed_activity(name, today - dt.timedelta(days=75), today)
    add_persons(db, names)
    db.execute("UPDATE persons SET has_cbhours_trophy = true WHERE username IN ('u000', 'u001')")
    db.commit()

    jobs = _run_both(configs, db_url)
    for job in jobs.values():
        assert job.status == "succeeded", job.error_message
    records = api_requests(sim)
    assert len(records) >= 7  # 3 get_live, 2 x (activity, months), backfill windows
    assert [r.status for r in records] == [200] * len(records)  # no 429 from the limiter
    assert sim.state.cbhours.rate_limit.view().refused == 0
    arrivals = sorted(r.t for r in records)
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    # Paced at 1 s when sent; arrivals may differ by the scheduling jitter the simulated API
    # allows for (its tolerance, 20 ms), on a machine busy with other test workers.
    limit = sim.state.cbhours.rate_limit.view()
    assert min(gaps) >= limit.interval - limit.tolerance, gaps
    # The crawls really ran at the same time, so each paced against the other's requests. (Their
    # requests need not interleave: a crawl with several requests in flight reserves the next
    # slots for all of them, and the other crawl's requests then queue behind those.)
    live, activity = jobs["cbhours_live"], jobs["cbhours_activity"]
    assert live.started_at and live.finished_at and activity.started_at and activity.finished_at
    assert live.started_at < activity.finished_at and activity.started_at < live.finished_at
    kinds = {"live" if "get_live" in r.query else "activity" for r in records}
    assert kinds == {"live", "activity"}


def test_429_with_retry_after_backs_off_and_succeeds(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours()
    sim.state.cbhours.add_trophy("ann")
    add_persons(db, ["ann"])
    sim.state.faults.set([FaultRule(prefix="/api.php", status=429, retry_after=1, times=2)])

    job = crawl(config, db_url, "cbhours_live")
    assert job.status == "succeeded", job.error_message
    assert job.items == {"cbhours_live": 1}
    assert (job.retries, job.stats["retry/count"], job.stats["backoff/429"]) == (2, 2, 2)
    records = api_requests(sim)
    assert [r.status for r in records] == [429, 429, 200]
    assert all(b.t - a.t >= 1.0 for a, b in pairwise(records))


def test_5xx_past_the_last_retry_fails_the_job_naming_path_and_status(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours(BACKOFF_MAX_RETRIES="2")
    add_persons(db, ["ann"])
    sim.state.faults.set([FaultRule(prefix="/api.php", status=503, times=10)])

    job = crawl(config, db_url, "cbhours_live")
    assert job.status == "failed"
    assert job.error_message == "get_live batch 1: /api.php: HTTP 503 after 2 retries"
    assert (job.retries, job.stats["backoff/5xx"]) == (2, 2)
    assert len(api_requests(sim)) == 3
