"""Thumbnail rows: who is due one, recording without duplicates, and finding the file safely."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from storage.images import Thumbnail, content_path, image_file, record_thumbnails
from storage.targets import thumbnail_targets

NOW = dt.datetime.now(dt.UTC)


def _shot(username: str, digest: str, at: dt.datetime) -> Thumbnail:
    return Thumbnail(
        username=username,
        source_url=f"https://thumb.live.mmcdn.com/ri/{username}.jpg",
        local_path=content_path(digest),
        content_hash=digest,
        content_type="image/jpeg",
        size=1234,
        fetched_at=at,
    )


def _rows(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT p.username, i.content_hash, i.fetched_at, p.latest_image_id = i.image_id "
        "FROM images i JOIN persons p USING (person_id) ORDER BY p.username, i.image_id"
    ).fetchall()


def test_new_content_is_a_new_row_and_known_content_only_refreshes(
    db: psycopg.Connection[Any],
) -> None:
    db.execute("INSERT INTO persons (username) VALUES ('ann'), ('bob')")
    earlier = NOW - dt.timedelta(days=2)
    assert record_thumbnails(db, [_shot("ann", "a" * 64, earlier), _shot("bob", "a" * 64, earlier)])
    # The same picture of two persons is one file, but each person has a row.
    assert _rows(db) == [("ann", "a" * 64, earlier, True), ("bob", "a" * 64, earlier, True)]

    record_thumbnails(db, [_shot("ann", "a" * 64, NOW), _shot("nobody", "c" * 64, NOW)])
    assert _rows(db)[0] == ("ann", "a" * 64, NOW, True)  # no new row, fetched_at refreshed
    assert len(_rows(db)) == 2  # persons that do not exist are skipped

    record_thumbnails(db, [_shot("bob", "b" * 64, NOW)])
    assert _rows(db)[1:] == [("bob", "a" * 64, earlier, False), ("bob", "b" * 64, NOW, True)]
    # Two pictures of one person in one batch: the newer one wins, and the statement holds.
    record_thumbnails(db, [_shot("ann", "d" * 64, earlier), _shot("ann", "e" * 64, NOW)])
    assert [row[1] for row in _rows(db) if row[0] == "ann" and row[3]] == ["e" * 64]


def test_due_are_persons_of_interest_without_a_recent_image(
    db: psycopg.Connection[Any],
) -> None:
    db.execute(
        "INSERT INTO persons (username, following, follower, watch) VALUES "
        "('new', true, null, false), ('fresh', null, true, false), ('stale', false, null, true),"
        " ('other', false, false, false)"
    )
    record_thumbnails(
        db,
        [
            _shot("fresh", "f" * 64, NOW - dt.timedelta(hours=1)),
            _shot("stale", "5" * 64, NOW - dt.timedelta(hours=30)),
            _shot("other", "0" * 64, NOW - dt.timedelta(hours=30)),
        ],
    )
    everyone = ["following", "follower", "watch"]
    assert thumbnail_targets(db, everyone, 24) == ["new", "stale"]
    assert thumbnail_targets(db, everyone, 0.5) == ["fresh", "new", "stale"]
    assert thumbnail_targets(db, ["follower"], 0.5) == ["fresh"]
    assert thumbnail_targets(db, [], 24) == []


def test_the_file_is_found_only_inside_the_images_folder(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "ab").mkdir(parents=True)
    (folder / "ab" / "abc.jpg").write_bytes(b"x")
    (tmp_path / "secret").write_text("no")
    (folder / "ab" / "link.jpg").symlink_to(tmp_path / "secret")
    assert image_file(folder, "ab/abc.jpg") == (folder / "ab" / "abc.jpg").resolve()
    assert image_file(folder, "ab/missing.jpg") is None
    assert image_file(folder, "../secret") is None
    assert image_file(folder, str(tmp_path / "secret")) is None
    assert image_file(folder, "ab/link.jpg") is None
    assert image_file(folder, "ab") is None  # a folder is no file
