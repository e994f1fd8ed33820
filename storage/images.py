"""Downloaded thumbnails: the crawl records them, the control API finds what to serve.

A picture is content-addressed by the SHA-256 of the bytes upstream sent, so the same picture
is stored once however many persons or polls bring it. Where its bytes are is
``images.store``: ``files``, under ``data_dir/images`` as ``<sha256[:2]>/<sha256>.jpg``
(one machine); ``database``, one ``image_contents`` row per hash (migration 0018), which every
Scrapyd node writes and every API reads. The ``images`` table keeps one row per person and
content hash (where it came from, the content's path, type, size, when it was last fetched),
and ``persons.latest_image_id`` points at the newest. A row is served from ``image_contents``
when its content is there, else from the file, so pictures stored before a change of
``images.store`` still show. Upstream image URLs expire; these rows do not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

Connection = psycopg.Connection[Any]

Blob = bytes
IMAGES_FOLDER = "images"
"""The folder under ``data_dir`` that holds the files."""


def images_dir(data_path: Path) -> Path:
    """Where the files are kept, for a data dir."""
    return data_path / IMAGES_FOLDER


def content_path(sha256_hex: str) -> str:
    """The path of a file, relative to the images folder, from the SHA-256 of its content.

    Two characters of fan-out keep any one folder to a few thousand files.
    """
    return f"{sha256_hex[:2]}/{sha256_hex}.jpg"


class Thumbnail(msgspec.Struct, frozen=True, kw_only=True):
    """One downloaded thumbnail of one person.

    Attributes:
        username: whose picture it is (lower case).
        source_url: the upstream URL it was fetched from (it will expire).
        local_path: the content's path relative to the images folder (:func:`content_path`),
            where its file is with ``images.store = "files"``.
        content_hash: SHA-256 of the content, hex.
        content_type: the stored picture's media type.
        size: the stored picture's size in bytes.
        fetched_at: when it was downloaded.
        content: the stored bytes, to keep in ``image_contents`` (``images.store =
            "database"``); None when they are a file already.
    """

    username: str
    source_url: str
    local_path: str
    content_hash: str
    content_type: str
    size: int
    fetched_at: dt.datetime
    content: bytes | None = None


# Content already stored is not written again (its hash is its name).
_KEEP_CONTENTS = """
INSERT INTO image_contents (content_hash, content)
SELECT * FROM unnest(%(hashes)s::text[], %(contents)s::bytea[])
ON CONFLICT (content_hash) DO NOTHING
"""

# One row per person: if a batch held two pictures of one person, the newest wins (and ON
# CONFLICT may not touch one row twice in a statement). Known content only refreshes its row.
_RECORD = """
WITH given AS (
    SELECT DISTINCT ON (g.username) g.*
    FROM unnest(%(usernames)s::text[], %(urls)s::text[], %(paths)s::text[], %(hashes)s::text[],
                %(types)s::text[], %(sizes)s::integer[], %(times)s::timestamptz[])
         AS g (username, source_url, local_path, content_hash, content_type, bytes, fetched_at)
    ORDER BY g.username, g.fetched_at DESC
), upserted AS (
    INSERT INTO images AS i
        (person_id, source_url, local_path, content_hash, content_type, bytes, fetched_at)
    SELECT p.person_id, g.source_url, g.local_path, g.content_hash, g.content_type, g.bytes,
           g.fetched_at
    FROM given g JOIN persons p ON p.username = g.username
    ON CONFLICT (person_id, content_hash) DO UPDATE
        SET source_url = EXCLUDED.source_url,
            fetched_at = GREATEST(i.fetched_at, EXCLUDED.fetched_at)
    RETURNING i.image_id, i.person_id
)
UPDATE persons p SET latest_image_id = u.image_id
FROM upserted u
WHERE p.person_id = u.person_id AND p.latest_image_id IS DISTINCT FROM u.image_id
"""


def record_thumbnails(conn: Connection, thumbnails: Sequence[Thumbnail]) -> int:
    """Records downloaded thumbnails in one transaction; returns how many were given.

    Called by the crawl's storage pipeline once the files are on disk, or with their bytes
    (``content``), which are stored in the same transaction. New content adds a row
    and becomes the person's latest image; content the person already had adds nothing but a
    newer ``fetched_at`` (which is what the "at most once per interval" rule reads), and
    becomes the latest again. Persons not in ``persons`` are skipped.
    """
    if not thumbnails:
        return 0
    params = {
        "usernames": [t.username for t in thumbnails],
        "urls": [t.source_url for t in thumbnails],
        "paths": [t.local_path for t in thumbnails],
        "hashes": [t.content_hash for t in thumbnails],
        "types": [t.content_type for t in thumbnails],
        "sizes": [t.size for t in thumbnails],
        "times": [t.fetched_at for t in thumbnails],
    }
    held = {t.content_hash: t.content for t in thumbnails if t.content is not None}
    with conn.transaction():
        if held:
            conn.execute(_KEEP_CONTENTS, {"hashes": list(held), "contents": list(held.values())})
        conn.execute(_RECORD, params)
    return len(thumbnails)


class StoredImage(msgspec.Struct, frozen=True):
    """What the API needs to serve one stored image.

    Attributes:
        content: the bytes, when they are kept in the database; else None (a file).
    """

    image_id: int
    local_path: str
    content_type: str | None
    bytes: int | None
    content: Blob | None  # (a field above is named bytes)


async def get_image(conn: psycopg.AsyncConnection[Any], image_id: int) -> StoredImage | None:
    """The row of one stored image with its bytes when the database holds them, or None."""
    cur = conn.cursor(row_factory=class_row(StoredImage))
    await cur.execute(
        "SELECT i.image_id, i.local_path, i.content_type, i.bytes, c.content"
        " FROM images i LEFT JOIN image_contents c USING (content_hash)"
        " WHERE i.image_id = %s",
        [image_id],
    )
    return await cur.fetchone()


def image_file(folder: Path, local_path: str) -> Path | None:
    """The file a row names, or None if it is missing or would lie outside ``folder``.

    The path comes from our own rows, but a row is data: a path that climbs out of the images
    folder (``..``, absolute, a symlink) is never served.
    """
    root = folder.resolve()
    candidate = (root / local_path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate
