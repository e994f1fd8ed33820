"""An export of 100,000 persons streams: every row comes out, and memory stays at a batch."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import psycopg

from control_api.export_formats import ExportFormat, body
from storage.database import connect_async
from storage.exports import export_persons
from storage.person_list import PersonFilter, PersonSummary

COUNT = 100_000


def _export(db_url: str, export_format: ExportFormat) -> tuple[int, int, int]:
    """(CSV lines or JSON objects seen, bytes produced, peak bytes allocated meanwhile)."""

    async def run() -> tuple[int, int, int]:
        async with await connect_async(db_url, autocommit=True) as conn:
            seen = size = 0
            tracemalloc.start()
            try:
                rows = export_persons(conn, PersonFilter())
                async for chunk in body(export_format, PersonSummary.__struct_fields__, rows):
                    size += len(chunk)
                    seen += chunk.count(b"\r\n" if export_format == "csv" else b'{"person_id":')
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            return seen, size, peak

    return asyncio.run(run())


def test_100000_persons_stream_in_little_memory(db: psycopg.Connection[Any], db_url: str) -> None:
    db.execute(
        "INSERT INTO persons (username, following) "
        "SELECT 'p' || g, mod(g, 3) = 0 FROM generate_series(1, %s) g",
        [COUNT],
    )
    db.execute(
        "WITH a AS (INSERT INTO accounts (account) VALUES ('owner')) "
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source) "
        "SELECT 'owner', person_id, 'followed', now(), 'followed_cams' FROM persons "
        "WHERE following"
    )
    db.commit()

    lines, size, peak = _export(db_url, "csv")
    assert lines == COUNT + 1  # the header and every person
    assert peak < 3_000_000 < size

    objects, size, peak = _export(db_url, "json")
    assert objects == COUNT
    assert peak < size / 10  # about 40 MB of JSON out, a batch's worth held
