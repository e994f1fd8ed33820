"""The affiliate spider: whole crawls into the real database (the format: tests/formats)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from agent.runner import CrawlRunner
from crawler.settings import crawl_settings
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config, load_config
from storage.jobs import Job
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer


def _crawl(config: Config, db_url: str) -> Job:
    runner = CrawlRunner(config, db_url)
    return runner.run(runner.submit("affiliate", {}, "cli").job_id)


def _count(db: psycopg.Connection[Any], query: str) -> int:
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_a_crawl_stores_every_room_once_and_completes_the_poll(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    job = _crawl(crawl_env, db_url)
    assert job.status == "succeeded", job.error_message
    assert job.items == {"affiliate_rooms": 1234, "affiliate_complete_polls": 1}
    assert _count(db, "SELECT count(*) FROM persons") == 1234
    assert _count(db, "SELECT count(DISTINCT observed_at) FROM affiliate_api_snapshots") == 1
    assert _count(db, "SELECT count(*) FROM source_polls WHERE source = 'affiliate'") == 1
    assert (
        _count(
            db,
            "SELECT count(*) FROM v_person_current_state "
            "WHERE online AND live_source = 'affiliate'",
        )
        == 1234
    )
    pages = sim.state.requests.count("/api/public/affiliates/onlinerooms/")
    assert pages == 3  # 1234 rooms in pages of 500

    # Rooms move between pages while paging: some are seen twice and stored once.
    sim.state.affiliate.move_between_pages = 40
    again = _crawl(crawl_env, db_url)
    assert again.status == "succeeded", again.error_message
    assert (
        _count(db, f"SELECT count(*) FROM affiliate_api_snapshots WHERE job_id = {again.job_id}")
        == again.items["affiliate_rooms"]
    )
    assert again.items["affiliate_rooms"] < 1234
    assert _count(db, "SELECT count(*) FROM persons") == 1234


def test_a_malformed_page_fails_the_job_and_concludes_nothing(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    sim.state.faults.set(
        [FaultRule(prefix="/api/public/affiliates/", malformed="wrong_type", field="num_followers")]
    )
    job = _crawl(crawl_env, db_url)
    assert job.status == "failed"
    assert job.error_message is not None
    assert "num_followers: expected `int`, got `str`" in job.error_message
    assert _count(db, "SELECT count(*) FROM source_polls") == 0
    assert _count(db, "SELECT count(*) FROM affiliate_api_snapshots") == 0


def test_a_room_with_nul_and_lone_surrogates_is_stored_and_the_poll_completes(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    # Before: a lone surrogate failed the whole page (msgspec refuses it), and a NUL the whole
    # 2,500-row COPY batch; either way the poll never completed while that room was online.
    sim.state.faults.set(
        [
            FaultRule(
                prefix="/api/public/affiliates/", malformed="unstorable_text", field="room_subject"
            )
        ]
    )
    job = _crawl(crawl_env, db_url)
    assert job.status == "succeeded", job.error_message
    assert job.items == {"affiliate_rooms": 1234, "affiliate_complete_polls": 1}
    assert _count(db, "SELECT count(*) FROM affiliate_api_snapshots") == 1234
    assert _count(db, "SELECT count(*) FROM source_polls WHERE source = 'affiliate'") == 1
    assert (
        _count(
            db,
            "SELECT count(*) FROM affiliate_api_snapshots "
            "WHERE strpos(room_subject, '~sim') > 0 OR raw::text LIKE '%\\\\u0000%'",
        )
        == 0
    )


def test_a_room_the_database_refuses_is_set_aside_and_counted(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    # An age beyond smallint passes the decoder (it is an int) and the database refuses it.
    sim.state.faults.set(
        [
            FaultRule(
                prefix="/api/public/affiliates/", malformed="set_value", field="age", value=99999
            )
        ]
    )
    job = _crawl(crawl_env, db_url)
    assert job.status == "succeeded", job.error_message
    assert job.stats["roomwatch/rows_set_aside"] == 1
    assert job.items == {"affiliate_rooms": 1233, "affiliate_complete_polls": 1}
    assert _count(db, "SELECT count(*) FROM affiliate_api_snapshots") == 1233
    assert _count(db, "SELECT count(*) FROM source_polls WHERE source = 'affiliate'") == 1
    log = (crawl_env.data_path / "logs" / f"job-{job.job_id}.log").read_text()
    assert "affiliate room" in log and "set aside" in log


def test_without_a_campaign_slug_the_spider_refuses(
    crawl_env: Config, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMWATCH_AFFILIATE_WM", "")
    job = _crawl(load_config(), db_url)  # the config is read once, then handed to the crawl
    assert job.status == "failed"
    assert job.error_message is not None
    assert "affiliate.wm (ROOMWATCH_AFFILIATE_WM) is not set" in job.error_message


class _FixedFeed(ThreadingHTTPServer):
    """A loopback feed answering every page with what ``answer(offset)`` gives: for bodies and
    counts the simulator does not produce (a 17 MB page, ``count=10**9``)."""

    def __init__(self, answer: Callable[[int], Iterator[bytes]]) -> None:
        self.answer = answer
        self.offsets: list[int] = []
        super().__init__(("127.0.0.1", 0), _FixedFeedHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/public/affiliates/onlinerooms/"


class _FixedFeedHandler(BaseHTTPRequestHandler):
    server: _FixedFeed
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        offset = int(parse_qs(urlsplit(self.path).query)["offset"][0])
        self.server.offsets.append(offset)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")  # no Content-Length to refuse early
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for part in self.server.answer(offset):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawl hung up: what a size limit does

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fixed_feed(
    crawl_env: Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Callable[[int], Iterator[bytes]]], tuple[_FixedFeed, Config]]]:
    servers: list[_FixedFeed] = []

    def start(answer: Callable[[int], Iterator[bytes]]) -> tuple[_FixedFeed, Config]:
        server = _FixedFeed(answer)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("ROOMWATCH_AFFILIATE_URL", server.url)
        return server, load_config()

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _room(index: int, subject: str = "") -> dict[str, Any]:
    return {
        "username": f"capuser{index}",
        "gender": "f",
        "current_show": "public",
        "num_users": 1,
        "num_followers": 2,
        "room_subject": subject,
    }


def _page(first: int, rooms: int, count: int, subject: str = "") -> bytes:
    results = [_room(first + i, subject) for i in range(rooms)]
    return json.dumps({"results": results, "count": count}).encode()


def test_a_page_larger_than_the_download_limit_fails_the_job(
    fixed_feed: Any, db_url: str, db: psycopg.Connection[Any]
) -> None:
    def too_big(offset: int) -> Iterator[bytes]:
        # 17 MiB: more than the affiliate spider's 16 MiB, sent in pieces as it is made.
        head, tail = _page(0, 1, 1).split(b'"room_subject": "', 1)
        yield head + b'"room_subject": "'
        for _ in range(17 * 16):
            yield b"x" * 65536
        yield tail

    server, config = fixed_feed(too_big)
    job = _crawl(config, db_url)
    assert job.status == "failed"
    assert job.error_message is not None
    assert "page at offset 0" in job.error_message
    assert "larger than the download limit (16777216 bytes)" in job.error_message
    assert _count(db, "SELECT count(*) FROM source_polls") == 0
    assert server.offsets == [0]  # abandoned, and not retried


def test_every_crawl_has_a_download_limit() -> None:
    config = load_config({})
    for spider in SPIDERS.values():
        settings = crawl_settings(config, spider, 1, "")
        assert 0 < settings["DOWNLOAD_MAXSIZE"] <= 4 * 1024 * 1024
        assert 0 < settings["DOWNLOAD_WARNSIZE"] < settings["DOWNLOAD_MAXSIZE"]


@pytest.mark.parametrize("claimed", [3_000, 10**9])
def test_a_feed_claiming_too_many_rooms_is_read_up_to_the_cap_and_concludes_nothing(
    fixed_feed: Any,
    db_url: str,
    db: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    claimed: int,
) -> None:
    monkeypatch.setenv("ROOMWATCH_AFFILIATE_MAX_ROOMS", "1200")
    server, config = fixed_feed(lambda offset: iter([_page(offset, 500, claimed)]))
    job = _crawl(config, db_url)
    assert job.status == "succeeded", job.error_message
    assert sorted(server.offsets) == [0, 500, 1000]  # 1,200 rooms: three pages, not 2 million
    assert job.items == {"affiliate_rooms": 1500}
    assert job.stats["roomwatch/affiliate/claimed_count"] == claimed
    assert _count(db, "SELECT count(*) FROM source_polls") == 0  # nothing concluded
    assert _count(db, "SELECT count(*) FROM persons") == 1500
