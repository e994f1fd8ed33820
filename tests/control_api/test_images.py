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
from tests.web.pages_support import sign_in
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


def _record(conn: psycopg.Connection[Any], username: str, content: bytes, *, kept: bool) -> int:
    """Records ``content`` as the person's thumbnail as a crawl does: ``kept`` in the database
    (``images.store = "database"``), else only the row (the file is the caller's); its id."""
    digest = hashlib.sha256(content).hexdigest()
    thumbnail = Thumbnail(
        username=username,
        source_url=f"https://thumb.live.mmcdn.com/ri/{username}.jpg",
        local_path=content_path(digest),
        content_hash=digest,
        content_type="image/jpeg",
        size=len(content),
        fetched_at=dt.datetime.now(dt.UTC),
        content=content if kept else None,
    )
    record_thumbnails(conn, [thumbnail])
    row = conn.execute("SELECT latest_image_id FROM persons WHERE username = %s", [username])
    found = row.fetchone()
    assert found is not None
    return int(found[0])


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


def test_content_kept_in_the_database_is_served_by_the_api_and_the_pages(
    client: Client, conn: psycopg.Connection[Any], data_dir: Path
) -> None:
    # Stored by a crawl on another machine: no file here, the bytes in image_contents.
    write_affiliate_poll(conn, [room("cat"), room("dan")], observed_at=dt.datetime.now(dt.UTC))
    content = thumbnail_jpeg("cat")
    image_id = _record(conn, "cat", content, kept=True)
    same = _record(conn, "dan", content, kept=True)  # the same picture: stored once
    assert conn.execute("SELECT count(*) FROM image_contents").fetchone() == (1,)
    assert not images_dir(data_dir).exists()
    for path in (f"/api/v1/images/{image_id}", f"/api/v1/images/{same}"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert response.content == content
    assert client.get(f"/api/v1/images/{image_id}").status_code == 401
    assert sign_in(client).status_code == 303
    page = client.get(f"/images/{image_id}")
    assert (page.status_code, page.content) == (200, content)


def test_a_file_stored_before_the_switch_to_the_database_is_still_served(
    client: Client, stored: tuple[int, bytes], conn: psycopg.Connection[Any]
) -> None:
    image_id, content = stored  # a file, from images.store = "files"
    newer = _record(conn, "bob", thumbnail_jpeg("bob"), kept=True)
    assert client.get(f"/api/v1/images/{image_id}", headers=AUTH).content == content
    assert client.get(f"/api/v1/images/{newer}", headers=AUTH).content == thumbnail_jpeg("bob")
