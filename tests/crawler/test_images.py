"""Thumbnails: affiliate crawls download persons of interest's pictures from the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import psycopg
import pytest
from scrapy.http import Request, Response
from scrapy.pipelines.images import ImageException
from scrapy.utils.test import get_crawler

from agent.runner import CrawlRunner
from crawler.images import ThumbnailPipeline, allowed_image_url
from roomwatch.config import Config, load_config
from storage.jobs import Job
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer
from upstream_sim.site.thumbnails import THUMBNAIL_PATH, thumbnail_jpeg

HOSTS = frozenset({"thumb.live.mmcdn.com", "127.0.0.1"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://thumb.live.mmcdn.com/ri/alice.jpg", True),
        ("http://127.0.0.1:8080/ri/alice.jpg", True),
        ("https://THUMB.live.mmcdn.com/ri/alice.jpg", True),  # host names are case-insensitive
        ("https://evil.example/ri/alice.jpg", False),
        ("https://thumb.live.mmcdn.com.evil.example/x.jpg", False),
        ("https://user:pw@thumb.live.mmcdn.com/ri/alice.jpg", False),
        ("file:///etc/passwd", False),
        ("ftp://thumb.live.mmcdn.com/ri/alice.jpg", False),
        ("https://thumb.live.mmcdn.com:notaport/x.jpg", False),
        ("//thumb.live.mmcdn.com/ri/alice.jpg", False),
    ],
)
def test_only_http_urls_on_allowed_hosts_are_fetched(url: str, allowed: bool) -> None:
    assert allowed_image_url(url, HOSTS) is allowed


def _crawl(config: Config, db_url: str) -> Job:
    runner = CrawlRunner(config, db_url)
    job = runner.run(runner.submit("affiliate", {}, "cli").job_id)
    assert job.status == "succeeded", job.error_message
    return job


@pytest.fixture
def people(sim: SimulatorServer, db: psycopg.Connection[Any]) -> dict[str, str]:
    """A small feed with thumbnails on the simulator, and four of its rooms known: three of
    interest (followed, follower, watch list) and one not."""
    sim.state.affiliate.reset(40, seed=11)
    sim.state.affiliate.thumbnail_base = sim.base_url + THUMBNAIL_PATH
    names = [room.username for room in sim.state.affiliate.rooms[:4]]
    roles = dict(zip(("following", "follower", "watch", "nobody"), names, strict=True))
    db.execute(
        "INSERT INTO persons (username, following, follower, watch) VALUES "
        "(%s, true, null, false), (%s, null, true, false), (%s, false, false, true), "
        "(%s, false, false, false)",
        names,
    )
    db.commit()
    return roles


def _images(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT p.username, i.local_path, i.content_hash, i.content_type, i.bytes, i.fetched_at,"
        " i.source_url, p.latest_image_id = i.image_id "
        "FROM images i JOIN persons p USING (person_id) ORDER BY p.username"
    ).fetchall()


def test_persons_of_interest_get_thumbnails_once_per_interval(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOMWATCH_IMAGES_ALLOWED_HOSTS", "127.0.0.1")
    config = load_config()
    job = _crawl(config, db_url)
    interest = sorted(name for role, name in people.items() if role != "nobody")
    rows = _images(db)
    assert [row[0] for row in rows] == interest  # and nobody else
    assert job.items["images"] == 3
    assert job.stats["roomwatch/images/written"] == 3
    assert sim.state.requests.count(THUMBNAIL_PATH) == 3
    images = config.data_path / "images"
    for username, local_path, digest, content_type, size, _, url, latest in rows:
        content = thumbnail_jpeg(username)  # what the simulator served, byte for byte
        assert digest == hashlib.sha256(content).hexdigest()
        assert local_path == f"{digest[:2]}/{digest}.jpg"
        assert (images / local_path).read_bytes() == content
        assert (content_type, size, latest) == ("image/jpeg", len(content), True)
        assert url == f"{sim.base_url}/ri/{username}.jpg"

    # Within the interval: nothing is downloaded again.
    _crawl(config, db_url)
    assert sim.state.requests.count(THUMBNAIL_PATH) == 3
    assert _images(db) == rows

    # After it: downloaded again, but the same content is neither written nor recorded twice.
    db.execute("UPDATE images SET fetched_at = fetched_at - interval '25 hours'")
    db.commit()
    again = _crawl(config, db_url)
    assert sim.state.requests.count(THUMBNAIL_PATH) == 6
    assert again.stats["roomwatch/images/reused"] == 3
    assert "roomwatch/images/written" not in again.stats
    refreshed = _images(db)
    assert [r[:5] for r in refreshed] == [r[:5] for r in rows]
    assert all(new[5] > old[5] for new, old in zip(refreshed, rows, strict=True))
    assert sorted(p.name for p in images.rglob("*") if p.is_file()) == sorted(
        Path(row[1]).name for row in rows
    )


def test_with_the_database_store_the_bytes_are_kept_in_postgresql_once_per_content(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOMWATCH_IMAGES_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ROOMWATCH_IMAGES_STORE", "database")
    config = load_config()
    job = _crawl(config, db_url)
    assert job.items["images"] == 3
    rows = _images(db)
    interest = sorted(name for role, name in people.items() if role != "nobody")
    assert [row[0] for row in rows] == interest
    kept = dict(db.execute("SELECT content_hash, content FROM image_contents").fetchall())
    for username, local_path, digest, content_type, size, _, _, latest in rows:
        content = thumbnail_jpeg(username)  # what the simulator served, byte for byte
        assert digest == hashlib.sha256(content).hexdigest()
        assert local_path == f"{digest[:2]}/{digest}.jpg"  # the content's name, as with files
        assert kept[digest] == content
        assert (content_type, size, latest) == ("image/jpeg", len(content), True)
    assert len(kept) == 3
    assert not (config.data_path / "images").exists()  # nothing on this machine's disk

    # Downloaded again after the interval: the same content is stored once.
    db.execute("UPDATE images SET fetched_at = fetched_at - interval '25 hours'")
    db.commit()
    _crawl(config, db_url)
    assert sim.state.requests.count(THUMBNAIL_PATH) == 6
    assert db.execute("SELECT count(*) FROM image_contents").fetchone() == (3,)
    assert [r[:5] for r in _images(db)] == [r[:5] for r in rows]


def test_a_host_not_allowed_is_refused_and_a_failed_download_is_only_counted(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Default allowed hosts: the simulator's 127.0.0.1 is not one of them.
    job = _crawl(crawl_env, db_url)
    assert job.stats["roomwatch/images/refused"] == 3
    assert sim.state.requests.count(THUMBNAIL_PATH) == 0
    assert _images(db) == []

    monkeypatch.setenv("ROOMWATCH_IMAGES_ALLOWED_HOSTS", "127.0.0.1")
    sim.state.faults.set([FaultRule(prefix=THUMBNAIL_PATH, status=500, times=1)])
    failed = _crawl(load_config(), db_url)  # the crawl itself succeeds
    assert failed.stats["roomwatch/images/failed"] == 1
    assert sim.state.requests.count(THUMBNAIL_PATH) == 3  # no retry of the failed one
    assert len(_images(db)) == 2


def _png_of_one_colour(width: int, height: int) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` zero pixels: a few kilobytes that decode to
    ``width * height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [5000, 20000])
def test_a_picture_with_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, side: int
) -> None:
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path)})
    crawler = get_crawler(
        settings_dict={"ROOMWATCH_CONFIG": config, "IMAGES_STORE": str(tmp_path / "images")}
    )
    pipeline = ThumbnailPipeline.from_crawler(crawler)
    body = _png_of_one_colour(side, side)
    assert len(body) < 100_000
    url = "http://127.0.0.1/ri/bomb.png"
    response = Response(url, body=body, request=Request(url))
    with pytest.raises(ImageException, match=r"refused: .* pixels, more than images.max_pixels"):
        asyncio.run(pipeline.image_downloaded(response, response.request, info=None))  # type: ignore[arg-type]
    assert crawler.stats.get_value("roomwatch/images/too_many_pixels") == 1
    assert not any(p.is_file() for p in (tmp_path / "images").rglob("*"))
