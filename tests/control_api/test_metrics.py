"""``GET /metrics``: the token rules, the Prometheus text format, and figures that are the
database's (job rows written as a crawl writes them, or by a real crawl through the runner)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import psycopg
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from psycopg.types.json import Jsonb

from control_api.app import create_app
from roomwatch.config import Config, load_config
from storage.jobs import finish_job, record_progress
from storage.writers import write_affiliate_poll
from tests.factories import AUTH, TOKEN, room
from tests.support import crawl, insert_room_events, room_event

Client = TestClient[Litestar]


def _scrape(client: Client, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one scrape, parsed by prometheus-client's own parser, by name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "://" not in response.text  # no URL (which may hold a token) in any label
    samples: list[Sample] = [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def _value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scrape[(name, frozenset(labels.items()))]


def _labelled(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in scrape.items() if sample == name}


def test_metrics_need_the_token(app: Litestar) -> None:
    scraped = {"path": "/metrics", "method": "GET", "app_name": "roomwatch", "status_code": "200"}
    with TestClient(app) as client:
        before = _labelled(_scrape(client, **AUTH), "roomwatch_http_requests_total")
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/metrics", params={"token": TOKEN}).status_code == 401
        scrape = _scrape(client, **AUTH)
    assert _value(scrape, "roomwatch_database_up") == 1
    assert _value(scrape, "roomwatch_persons") == 0
    # Refusals are not counted (least of all as answered 200s): only the first scrape is.
    key = frozenset(scraped.items())
    assert _labelled(scrape, "roomwatch_http_requests_total")[key] - before.get(key, 0) == 1


def test_public_metrics_need_no_token_and_nothing_else_opens(db_url: str, tmp_path: Path) -> None:
    config = load_config(
        {"ROOMWATCH_DATA_DIR": str(tmp_path / "data"), "ROOMWATCH_METRICS_PUBLIC": "true"}
    )
    with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
        scrape = _scrape(client)
        assert client.get("/api/v1/persons").status_code == 401
        assert client.get("/api/v1/status").status_code == 401
    assert _value(scrape, "roomwatch_database_up") == 1


def test_requests_are_counted_by_route_template_not_by_path(client: Client) -> None:
    name = "roomwatch_http_requests_total"
    template = {"path": "/api/v1/persons/{username}", "method": "GET", "app_name": "roomwatch"}
    before = _labelled(_scrape(client), name)
    assert client.get("/api/v1/persons/secretname").status_code == 404
    assert client.get("/api/v1/persons/othername").status_code == 404
    after = _scrape(client)
    key = frozenset({**template, "status_code": "404"}.items())
    assert _labelled(after, name)[key] - before.get(key, 0) == 2
    paths = {dict(labels).get("path") for (_, labels) in after}
    assert not [p for p in paths if p and ("secretname" in p or "othername" in p)]
    assert "/metrics" in paths


def _job(conn: psycopg.Connection[Any], spider: str, stats: dict[str, Any]) -> int:
    """A job the way a crawl process leaves it: running, its stats written as it goes."""
    row = conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status, started_at) "
        "VALUES (%s, 'cli', 'running', now()) RETURNING job_id",
        [spider],
    ).fetchone()
    assert row is not None
    record_progress(conn, int(row[0]), stats)
    return int(row[0])


STATS = {
    "downloader/request_count": 5,
    "downloader/response_status_count/200": 3,
    "downloader/response_status_count/429": 2,
    "downloader/exception_type_count/twisted.internet.error.ConnectionRefusedError": 1,
    "items/affiliate_rooms": 1500,
    "items/affiliate_complete_polls": 1,
    "log_count/ERROR": 1,
    "retry/count": 2,
    "backoff/429": 2,
    "backoff/wait_seconds": 1.5,
    "politeness/requests": 4,
    "politeness/wait_seconds": 0.75,
    "start_time": "2026-12-03 06:00:00",  # not a number: in no figure
    "roomwatch/pages": 3,  # a number no counter serves
}


def test_job_figures_name_the_account_of_a_per_account_spider(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("INSERT INTO accounts (account) VALUES ('studio_a'), ('studio_b')")
    for account, status in [
        ("studio_a", "succeeded"),
        ("studio_b", "failed"),
        ("studio_b", "running"),
    ]:
        conn.execute(
            "INSERT INTO crawl_jobs (spider, trigger, status, account) "
            "VALUES ('followers', 'cli', %s, %s)",
            [status, account],
        )
    scrape = _scrape(client)
    finished = _labelled(scrape, "roomwatch_crawl_jobs_finished_total")
    assert finished == {
        frozenset({("spider", "followers"), ("account", "studio_a"), ("status", "succeeded")}): 1,
        frozenset({("spider", "followers"), ("account", "studio_b"), ("status", "failed")}): 1,
    }
    assert (
        _value(
            scrape,
            "roomwatch_crawl_jobs_active",
            spider="followers",
            account="studio_b",
            status="running",
        )
        == 1
    )


def test_crawl_figures_add_finished_and_running_jobs(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    first = _job(conn, "affiliate", STATS)
    finish_job(conn, first, "succeeded", finish_reason="finished", stats=STATS)
    second = _job(conn, "affiliate", STATS)
    scrape = _scrape(client)
    spider = {"spider": "affiliate"}
    assert (
        _value(
            scrape, "roomwatch_crawl_jobs_finished_total", **spider, account="", status="succeeded"
        )
        == 1
    )
    assert (
        _value(scrape, "roomwatch_crawl_jobs_active", **spider, account="", status="running") == 1
    )
    assert _value(scrape, "roomwatch_crawl_requests_total", **spider) == 10
    assert _value(scrape, "roomwatch_crawl_responses_total", **spider, code="200") == 6
    assert _value(scrape, "roomwatch_crawl_responses_total", **spider, code="429") == 4
    assert (
        _value(
            scrape,
            "roomwatch_crawl_download_errors_total",
            **spider,
            exception="twisted.internet.error.ConnectionRefusedError",
        )
        == 2
    )
    assert _value(scrape, "roomwatch_crawl_items_total", **spider, kind="affiliate_rooms") == 3000
    assert _value(scrape, "roomwatch_crawl_errors_total", **spider) == 2
    assert _value(scrape, "roomwatch_crawl_retries_total", **spider) == 4
    assert _value(scrape, "roomwatch_crawl_backoffs_total", **spider, reason="429") == 4
    assert _value(scrape, "roomwatch_crawl_backoff_wait_seconds_total", **spider) == 3.0
    assert _value(scrape, "roomwatch_crawl_limiter_waits_total", **spider) == 8
    assert _value(scrape, "roomwatch_crawl_limiter_wait_seconds_total", **spider) == 1.5
    assert not [
        k
        for k in _labelled(scrape, "roomwatch_crawl_backoffs_total")
        if ("reason", "wait_seconds") in k
    ]

    # The running job ends with more than it last reported, failed: nothing counted twice,
    # nothing goes back.
    finish_job(conn, second, "failed", finish_reason="error", stats={**STATS, "retry/count": 3})
    scrape = _scrape(client)
    assert (
        _value(scrape, "roomwatch_crawl_jobs_finished_total", **spider, account="", status="failed")
        == 1
    )
    assert (
        _value(
            scrape, "roomwatch_crawl_jobs_finished_total", **spider, account="", status="succeeded"
        )
        == 1
    )
    assert not _labelled(scrape, "roomwatch_crawl_jobs_active")
    assert _value(scrape, "roomwatch_crawl_retries_total", **spider) == 5
    assert _value(scrape, "roomwatch_crawl_requests_total", **spider) == 10


def test_session_person_table_and_stream_figures_are_the_databases(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    for account, status in [
        ("owner", "valid"),
        ("owner", "expired"),
        ("owner", "expired"),
        ("studio", "unknown"),
    ]:
        conn.execute(
            "INSERT INTO login_sessions (account, method, status, file_name) "
            "VALUES (%s, 'import', %s, gen_random_uuid()::text)",
            [account, status],
        )
    now = dt.datetime.now(dt.UTC)
    write_affiliate_poll(conn, [room(f"p{i}") for i in range(7)], observed_at=now, complete=True)
    conn.execute("UPDATE persons SET watch = true WHERE username IN ('p1', 'p2')")
    newest = now - dt.timedelta(minutes=10)
    insert_room_events(
        conn,
        "owner",
        [
            room_event("tip", newest - dt.timedelta(hours=1)),
            room_event("follow", newest, username="p1"),
        ],
    )
    conn.execute(
        "INSERT INTO room_event_streams (account, last_event_id) VALUES ('owner', %s)",
        [f"{int(newest.timestamp() * 1000)}-0"],
    )
    scrape = _scrape(client)
    assert _labelled(scrape, "roomwatch_login_sessions") == {
        frozenset({"account": "owner", "status": "valid"}.items()): 1,
        frozenset({"account": "owner", "status": "expired"}.items()): 2,
        frozenset({"account": "studio", "status": "unknown"}.items()): 1,
    }
    assert _value(scrape, "roomwatch_persons") == 7
    assert _value(scrape, "roomwatch_persons_watched") == 2
    lag = _value(scrape, "roomwatch_event_stream_lag_seconds", account="owner")
    assert 600 <= lag < 600 + 300  # the newest event's age, not the oldest one's
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert size is not None
    assert _value(scrape, "roomwatch_database_size_bytes") > 0.5 * size[0]
    tables = {dict(k)["table"] for k in _labelled(scrape, "roomwatch_table_estimated_rows")}
    # Partitioned tables by their own name, never one row per partition.
    assert {"persons", "affiliate_api_snapshots", "room_events", "crawl_jobs"} <= tables
    assert not [t for t in tables if t.startswith("affiliate_api_snapshots_")]


def test_a_slow_database_never_hangs_the_scrape(client: Client, db_url: str) -> None:
    """A lock nobody releases: the scrape still answers, without the database's figures."""
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with psycopg.connect(db_url) as holder:
            holder.execute("LOCK TABLE persons IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        scrape = _scrape(client)
    finally:
        release.set()
        thread.join()
    assert _value(scrape, "roomwatch_database_up") == 0
    assert not _labelled(scrape, "roomwatch_persons")
    assert _labelled(scrape, "roomwatch_http_requests_total")  # this process's own figures
    assert _value(_scrape(client), "roomwatch_database_up") == 1


def test_figures_after_a_real_crawl_are_its_job_rows(
    crawl_env: Config, db_url: str, client: Client, conn: psycopg.Connection[Any]
) -> None:
    """A real affiliate crawl through the runner (a process of its own) against the
    simulator, then a finished job row written by someone else (another machine)."""
    job = crawl(crawl_env, db_url, "affiliate")
    assert job.status == "succeeded", job.error_message
    scrape = _scrape(client)
    spider = {"spider": "affiliate"}
    assert (
        _value(
            scrape, "roomwatch_crawl_jobs_finished_total", **spider, account="", status="succeeded"
        )
        == 1
    )
    assert _value(scrape, "roomwatch_crawl_items_total", **spider, kind="affiliate_rooms") == 1234
    assert _value(scrape, "roomwatch_crawl_responses_total", **spider, code="200") == 3
    assert (
        _value(scrape, "roomwatch_crawl_requests_total", **spider)
        == job.stats["downloader/request_count"]
    )
    assert _value(scrape, "roomwatch_persons") == 1234
    conn.execute(
        "INSERT INTO crawl_jobs (spider, trigger, status, stats) "
        "VALUES ('affiliate', 'cli', 'failed', %s)",
        [Jsonb({"items/affiliate_rooms": 6})],
    )
    scrape = _scrape(client)
    assert _value(scrape, "roomwatch_crawl_items_total", **spider, kind="affiliate_rooms") == 1240
    assert (
        _value(scrape, "roomwatch_crawl_jobs_finished_total", **spider, account="", status="failed")
        == 1
    )
