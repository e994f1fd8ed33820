"""The affiliate spider: decoding the real formats, and whole crawls into the real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.runner import CrawlRunner
from roomwatch.config import Config, load_config
from spiders.affiliate import PageError, decode_page
from storage.jobs import Job
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

SAMPLES = Path(__file__).parents[3] / "shared/reference/samples"


def _crawl(config: Config, db_url: str) -> Job:
    runner = CrawlRunner(config, db_url)
    return runner.run(runner.submit("affiliate", {}, "cli").job_id)


def _count(db: psycopg.Connection[Any], query: str) -> int:
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_decodes_the_real_2025_page() -> None:
    body = (SAMPLES / "affiliate_onlinerooms_2025-09-06_region-asia_FULL.json").read_bytes()
    rooms, count = decode_page(body)
    assert count == json.loads(body)["count"]
    assert len(rooms) == 500
    sky = next(r for r in rooms if r.username == "skytime96")
    assert (sky.age, sky.birthday.isoformat() if sky.birthday else None) == (29, "1996-08-12")
    assert sky.country is None  # "" means not set
    trisha = next(r for r in rooms if r.username == "xdreamangel")
    assert trisha.age is None and trisha.birthday is None
    assert json.loads(trisha.raw)["iframe_embed"].startswith("<iframe")


def test_decodes_the_legacy_bare_array_and_keeps_unknown_fields() -> None:
    body = (SAMPLES / "affiliate_onlinerooms_LEGACY_2017_bare-array_EXS-fixture.json").read_bytes()
    rooms, count = decode_page(body)
    assert count is None
    assert rooms
    assert json.loads(rooms[0].raw)["recorded"] == "false"  # not in our columns, kept raw


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"num_users": "12"}, "room 0: num_users: expected `int`, got `str`"),
        ({"tags": "a"}, "room 0: tags: expected `array`, got `str`"),
        ({"birthday": "12/08/1996"}, "room 0: birthday: expected YYYY-MM-DD"),
        ({"age": "29"}, "room 0: age: expected `int | null`, got `str`"),
    ],
)
def test_a_wrong_type_names_the_field(change: dict[str, Any], named: str) -> None:
    room = {
        "username": "a",
        "gender": "s",
        "current_show": "public",
        "num_users": 1,
        "num_followers": 2,
        "tags": [],
        **change,
    }
    with pytest.raises(PageError, match="^" + named.replace("|", r"\|")):
        decode_page(json.dumps({"results": [room], "count": 1}).encode())


def test_odd_values_are_read_as_documented() -> None:
    room = {
        "username": "Mixed",
        "gender": "s",
        "current_show": "public",
        "num_users": 1,
        "num_followers": 2,
        "tags": ["A"],
        "spoken_languages": "English, Russian",
        "country": "",
        "display_name": "",
        "birthday": "",
        "age": None,
        "new_field": 1,
    }
    [record], _ = decode_page(json.dumps({"count": 1, "results": [room]}).encode())
    assert (record.username, record.gender, record.tags) == ("mixed", "t", ["a"])
    assert record.spoken_languages == "English, Russian"
    assert (record.country, record.display_name, record.birthday) == (None, None, None)
    assert json.loads(record.raw)["new_field"] == 1


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


def test_without_a_campaign_slug_the_spider_refuses(
    crawl_env: Config, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROOMWATCH_AFFILIATE_WM", "")
    job = _crawl(load_config(), db_url)  # the config is read once, then handed to the crawl
    assert job.status == "failed"
    assert job.error_message is not None
    assert "affiliate.wm (ROOMWATCH_AFFILIATE_WM) is not set" in job.error_message
