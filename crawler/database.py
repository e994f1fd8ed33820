"""The crawl process's connection pool, shared by the storage pipeline and the job reporter."""

from __future__ import annotations

import threading
from typing import Any

from psycopg_pool import ConnectionPool

from roomwatch.config import Config
from storage.database import make_pool

_POOL_ATTRIBUTE = "roomwatch_pool"
_lock = threading.Lock()  # items are stored from several worker threads at once


def crawler_pool(crawler: Any) -> ConnectionPool:
    """The pool of this crawler, opened on first use (closed by :func:`close_crawler_pool`)."""
    with _lock:
        return _get_or_open(crawler)


def _get_or_open(crawler: Any) -> ConnectionPool:
    pool: ConnectionPool | None = getattr(crawler, _POOL_ATTRIBUTE, None)
    if pool is None:
        config: Config = crawler.settings["ROOMWATCH_CONFIG"]
        conninfo: str = crawler.settings["ROOMWATCH_CONNINFO"]
        pool = make_pool(conninfo, config.database)
        pool.open(wait=True)
        setattr(crawler, _POOL_ATTRIBUTE, pool)
    return pool


def close_crawler_pool(crawler: Any) -> None:
    """Closes the pool if one was opened."""
    with _lock:
        pool: ConnectionPool | None = getattr(crawler, _POOL_ATTRIBUTE, None)
    if pool is not None:
        pool.close()
        setattr(crawler, _POOL_ATTRIBUTE, None)
