"""``GET /images/{id}`` serves stored thumbnails, and a person's ``image`` prefers them."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.app import create_app
from roomwatch.config import load_config
from storage.images import Thumbnail, content_path, images_dir, record_thumbnails
from storage.writers import write_affiliate_poll
from tests.factories import AUTH, TOKEN, room
from upstream_sim.site.thumbnails import thumbnail_jpeg

Client = TestClient[Litestar]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def client(db_url: str, data_dir: Path) -> Iterator[Client]:
    """The API over this test's database and a data dir of its own; no token sent by default."""
    app = create_app(load_config({"ROOMWATCH_DATA_DIR": str(data_dir)}), db_url, TOKEN, "test")
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def stored(conn: psycopg.Connection[Any], data_dir: Path) -> tuple[int, bytes]:
    """ann has a stored thumbnail (id, content); bob was only seen with an upstream URL."""
    write_affiliate_poll(conn, [room("ann"), room("bob")], observed_at=dt.datetime.now(dt.UTC))
    content = thumbnail_jpeg("ann")
    digest = hashlib.sha256(content).hexdigest()
    file = images_dir(data_dir) / content_path(digest)
    file.parent.mkdir(parents=True)
    file.write_bytes(content)
    thumbnail = Thumbnail(
        username="ann",
        source_url="https://thumb.live.mmcdn.com/ri/ann.jpg",
        local_path=content_path(digest),
        content_hash=digest,
        content_type="image/jpeg",
        size=len(content),
        fetched_at=dt.datetime.now(dt.UTC),
    )
    record_thumbnails(conn, [thumbnail])
    row = conn.execute("SELECT latest_image_id FROM persons WHERE username = 'ann'").fetchone()
    assert row is not None
    return int(row[0]), content


def test_the_stored_file_is_served_with_its_type_and_only_with_the_token(
    client: Client, stored: tuple[int, bytes]
) -> None:
    image_id, content = stored
    assert client.get(f"/api/v1/images/{image_id}").status_code == 401
    response = client.get(f"/api/v1/images/{image_id}", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == content


def test_an_unknown_image_or_a_missing_file_is_a_404_problem(
    client: Client, stored: tuple[int, bytes], data_dir: Path
) -> None:
    image_id, _ = stored
    response = client.get(f"/api/v1/images/{image_id + 1}", headers=AUTH)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "image_id"
    for file in images_dir(data_dir).rglob("*.jpg"):
        file.unlink()
    assert client.get(f"/api/v1/images/{image_id}", headers=AUTH).status_code == 404


def test_a_person_links_the_local_copy_else_the_upstream_url(
    client: Client, stored: tuple[int, bytes]
) -> None:
    image_id, _ = stored
    ann = client.get("/api/v1/persons/ann", headers=AUTH).json()
    assert (ann["image_id"], ann["image"]) == (image_id, f"/api/v1/images/{image_id}")
    assert ann["image_url"] == "https://img.example/ann.jpg"  # upstream, with its source
    bob = client.get("/api/v1/persons/bob", headers=AUTH).json()
    assert (bob["image_id"], bob["image"]) == (None, "https://img.example/bob.jpg")
