"""Crawl extensions: any spider or item error fails the crawl, with its reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crawler.settings import crawl_settings
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config
from upstream_sim.server import SimulatorServer

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("callback", "spider error in {url}: ValueError: day is out of range for month"),
        ("item", "item error (dict) in {url}: KeyError: 'num_users'"),
        ("start", "spider error: OverflowError: date value out of range"),
    ],
)
def test_an_error_scrapy_only_logs_fails_the_crawl(
    sim: SimulatorServer, mode: str, reason: str
) -> None:
    # Before: Scrapy logged these, the crawl finished normally and the job "succeeded".
    url = f"{sim.base_url}/_sim/requests"  # any page answering 200
    done = subprocess.run(
        [sys.executable, "-m", "tests.crawler.raising_crawl", url, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert f"failure: {reason.format(url=url)}" in done.stdout, done.stderr[-2000:]


def test_every_crawl_runs_the_extension(crawl_env: Config) -> None:
    for info in SPIDERS.values():
        settings = crawl_settings(crawl_env, info, 1, "dbname=x")
        assert "crawler.extensions.SpiderErrors" in settings["EXTENSIONS"]
