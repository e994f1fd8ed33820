"""Thumbnails of persons of interest, downloaded by Scrapy's own images pipeline.

A spider yields a :class:`ThumbnailItem` for each person due a new picture (the crawl process
asked the database who, see ``storage.targets.thumbnail_targets``). :class:`ThumbnailPipeline`
refuses URLs that are not http(s) on an allowed host, downloads the rest (no redirects, no
retries, at most ``images.max_bytes``; a picture of more than ``images.max_pixels`` is refused
before it is decoded), and keeps each picture content-addressed by the SHA-256 of what upstream
sent, where ``images.store`` says: ``files``, in ``data_dir/images/<sha256[:2]>/<sha256>.jpg``
(the same content is never written twice); ``database``, nowhere here (:class:`DatabaseStore`):
the bytes go with the item, and the storage pipeline keeps them in PostgreSQL, once per hash,
so every Scrapyd node and the API reach them. It then hands a :class:`StoredThumbnails` item
on to the storage pipeline, which records the rows.

A failed or refused download never fails the crawl: it is counted in the job's stats
(``roomwatch/images/failed``, ``roomwatch/images/refused``) and tried again at the next poll.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from PIL import Image
from scrapy.http import Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.images import ImageException, ImagesPipeline

from crawler.items import StoredThumbnails, ThumbnailItem
from roomwatch.config import Config
from storage.images import Thumbnail, content_path

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.pipelines.files import FilesStoreProtocol, StatInfo
    from scrapy.pipelines.media import FileInfo, FileInfoOrError, MediaPipeline

CONTENT_TYPE = "image/jpeg"  # the images pipeline stores JPEG, converting anything else


def allowed_image_url(url: str, hosts: frozenset[str]) -> bool:
    """Whether an image URL from upstream data may be fetched: http(s) on exactly one of
    ``hosts`` (any port), with no credentials in it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and host is not None
        and host in hosts
        and parts.username is None
        and parts.password is None
    )


class ContentStore:
    """Scrapy's file store for ``IMAGES_STORE``, made for content-addressed paths.

    A file that exists already holds exactly these bytes (its name is their hash), so it is
    never rewritten; a new one is written under a temporary name and renamed into place, so a
    crawl killed mid-write leaves no truncated file for the next one to take for the picture.
    """

    def __init__(self, basedir: str) -> None:
        self.basedir = Path(basedir.split("://", 1)[1] if "://" in basedir else basedir)
        self.basedir.mkdir(parents=True, exist_ok=True)

    def _file(self, path: str | os.PathLike[str]) -> Path:
        return self.basedir / path

    def exists(self, path: str) -> bool:
        """Whether the file for ``path`` (relative to the store) is there."""
        return self._file(path).is_file()

    def size(self, path: str) -> int:
        """The stored file's size in bytes."""
        return self._file(path).stat().st_size

    def stat_file(self, path: str, info: MediaPipeline.SpiderInfo) -> StatInfo:
        """Scrapy's "is it stored, and when" (unused: the pipeline always downloads)."""
        try:
            return {"last_modified": self._file(path).stat().st_mtime}
        except OSError:
            return {}

    def persist_file(
        self,
        path: str | os.PathLike[str],
        buf: BytesIO,
        info: MediaPipeline.SpiderInfo,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        target = self._file(path)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(buf.getvalue())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class DatabaseStore:
    """Scrapy's file store for ``IMAGES_STORE = "database:"``: it keeps nothing itself.

    With ``images.store = "database"`` a picture's bytes travel in the
    :class:`~storage.images.Thumbnail` to the storage pipeline, which writes them to
    ``image_contents`` in the transaction that records the row; the pipeline never asks this
    store anything (it always downloads: the database chose who is due).
    """

    SCHEME = "database"

    def __init__(self, uri: str) -> None:
        if uri != f"{self.SCHEME}:":
            raise ValueError(f"IMAGES_STORE: expected {self.SCHEME}:, got {uri!r}")

    def stat_file(self, path: str, info: MediaPipeline.SpiderInfo) -> StatInfo:
        """Scrapy's "is it stored, and when": unknown here, so always downloaded."""
        return {}

    def persist_file(self, *args: Any, **kwargs: Any) -> None:
        """Never called (see the class docstring)."""
        raise TypeError("the database store keeps nothing itself; the item carries the bytes")


class ThumbnailPipeline(ImagesPipeline):
    """Downloads :class:`ThumbnailItem` pictures; every other item passes through untouched.

    Scrapy's pipeline names files by a hash of the URL and re-downloads them after
    ``IMAGES_EXPIRES`` days; here upstream URLs are stable per room while the picture changes,
    so the name is the hash of the content and the database decides who is due.
    """

    STORE_SCHEMES: ClassVar[dict[str, type[FilesStoreProtocol]]] = {
        **ImagesPipeline.STORE_SCHEMES,
        "": ContentStore,
        "file": ContentStore,
        DatabaseStore.SCHEME: DatabaseStore,
    }

    def __init__(
        self, store_uri: str | os.PathLike[str], download_func: None = None, *, crawler: Crawler
    ) -> None:
        super().__init__(store_uri, crawler=crawler)
        if not isinstance(self.store, ContentStore | DatabaseStore):
            raise TypeError(f"IMAGES_STORE must be a local folder or database:, got {store_uri!r}")
        # None: the bytes go to the database with the item (kept here until it is completed).
        self.content_store: ContentStore | None = (
            self.store if isinstance(self.store, ContentStore) else None
        )
        self._held: dict[str, bytes] = {}
        config: Config = crawler.settings["ROOMWATCH_CONFIG"]
        self.allowed_hosts = frozenset(config.images.allowed_hosts)
        self.max_bytes = config.images.max_bytes
        self.max_pixels = config.images.max_pixels

    async def process_item(self, item: Any, spider: Spider | None = None) -> Any:
        if not isinstance(item, ThumbnailItem):
            return item
        return await super().process_item(item)

    def get_media_requests(self, item: Any, info: MediaPipeline.SpiderInfo) -> list[Request]:
        if not allowed_image_url(item.url, self.allowed_hosts):
            self.crawler.stats.inc_value("roomwatch/images/refused")
            info.spider.logger.warning(
                "thumbnail of %s refused: not an http(s) URL on images.allowed_hosts",
                item.username,
            )
            return []
        # No retries: a picture that fails is tried at the next poll, and a poll should not
        # wait out back-offs for one. No redirects either (MEDIA_ALLOW_REDIRECTS is off): a
        # redirect could lead off the allowed hosts.
        meta = {"download_maxsize": self.max_bytes, "dont_retry": True}
        return [Request(item.url, callback=NO_CALLBACK, meta=meta)]

    def media_to_download(
        self, request: Request, info: MediaPipeline.SpiderInfo, *, item: Any = None
    ) -> None:
        """Always download: the path depends on the content, and the database already chose
        who is due (Scrapy's own check would look for a file named after the URL)."""
        return None

    def file_path(
        self,
        request: Request,
        response: Response | None = None,
        info: MediaPipeline.SpiderInfo | None = None,
        *,
        item: Any = None,
    ) -> str:
        if response is None:
            raise ValueError("a content-addressed path needs the downloaded content")
        return content_path(hashlib.sha256(response.body).hexdigest())

    async def image_downloaded(
        self,
        response: Response,
        request: Request,
        info: MediaPipeline.SpiderInfo,
        *,
        item: Any = None,
    ) -> str:
        """Stores the picture unless that content is already on disk; returns its SHA-256.

        A JPEG (every real thumbnail) is kept byte for byte, so the file's name is the hash of
        the file; anything else is converted to JPEG by Scrapy's ``convert_image`` (named after
        what upstream sent, so the same upstream content still maps to one file). Scrapy's own
        version would re-encode JPEGs too, losing quality and the match between name and file.

        Raises:
            ImageException: the body is not an image Pillow can read.
        """
        digest = hashlib.sha256(response.body).hexdigest()
        path = content_path(digest)
        if self.content_store is not None and self.content_store.exists(path):
            self.crawler.stats.inc_value("roomwatch/images/reused")
            return digest
        try:
            with Image.open(BytesIO(response.body)) as image:
                self._check_pixels(image.size)  # from the header, before anything is decoded
                image.load()
                if image.format == "JPEG" and image.mode in ("RGB", "L"):
                    buf = BytesIO(response.body)
                else:
                    _, buf = self.convert_image(image, response_body=BytesIO(response.body))
        except Image.DecompressionBombError:
            # Pillow's own, far higher limit, hit while reading the header: the same refusal.
            raise ImageException(self._too_many_pixels("far more")) from None
        except (OSError, ValueError) as exc:
            raise ImageException(f"not a readable image ({exc})") from None
        if self.content_store is None:
            self._held[digest] = buf.getvalue()  # taken by media_downloaded, just below
        else:
            self.content_store.persist_file(path, buf, info)
            self.crawler.stats.inc_value("roomwatch/images/written")
        return digest

    async def media_downloaded(
        self,
        response: Response,
        request: Request,
        info: MediaPipeline.SpiderInfo,
        *,
        item: Any = None,
    ) -> FileInfo:
        """Scrapy's result of one download, plus, with the database store, the bytes to keep
        (``content``): Scrapy hands this one result to every item that asked for the URL."""
        result = await super().media_downloaded(response, request, info, item=item)
        if self.content_store is None:
            held = self._held.pop(str(result["checksum"]))
            result["content"] = held  # type: ignore[typeddict-unknown-key]
        return result

    def _check_pixels(self, size: tuple[int, int]) -> None:
        """Refuses a picture of more than ``images.max_pixels`` before it is decoded.

        A few kilobytes of PNG can declare 20000x20000 pixels of one colour; decoding (and
        converting it to RGB for JPEG) would take gigabytes. Pillow's own guard
        (``Image.MAX_IMAGE_PIXELS``, about 89 million, an error only at twice that) is far
        above any thumbnail and is process-wide state, so the pipeline sets its own.
        """
        width, height = size
        if width * height > self.max_pixels:
            raise ImageException(self._too_many_pixels(f"{width}x{height}"))

    def _too_many_pixels(self, what: str) -> str:
        self.crawler.stats.inc_value("roomwatch/images/too_many_pixels")
        return f"refused: {what} pixels, more than images.max_pixels ({self.max_pixels})"

    def _stored_size(self, path: str) -> int:
        assert self.content_store is not None  # no content in the item: a file was written
        return self.content_store.size(path)

    def item_completed(
        self, results: list[FileInfoOrError], item: Any, info: MediaPipeline.SpiderInfo
    ) -> Any:
        """The stored thumbnail for the storage pipeline, or the item itself when there is
        none (refused, or failed: counted, logged once by Scrapy, never failing the crawl)."""
        if not results:
            return item
        ok, result = results[0]
        if not ok:
            self.crawler.stats.inc_value("roomwatch/images/failed")
            return item
        assert isinstance(result, dict)  # a FileInfo
        path = result["path"]
        content: bytes | None = result.get("content")  # type: ignore[assignment]
        thumbnail = Thumbnail(
            username=item.username,
            source_url=item.url,
            local_path=path,
            content_hash=str(result["checksum"]),
            content_type=CONTENT_TYPE,
            size=len(content) if content is not None else self._stored_size(path),
            fetched_at=dt.datetime.now(dt.UTC),
            content=content,
        )
        return StoredThumbnails([thumbnail])
