"""storage/exports.py: the list's rows through a server-side cursor, a batch at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from storage.database import connect_async
from storage.exports import export_follow_events, export_persons
from storage.person_list import PersonFilter, list_persons


def _persons(db: psycopg.Connection[Any], count: int) -> None:
    db.execute(
        "INSERT INTO persons (username, watch) "
        "SELECT 'p' || g, mod(g, 2) = 0 FROM generate_series(1, %s) g",
        [count],
    )
    db.commit()


async def _read(
    db_url: str, filters: PersonFilter, batch: int
) -> tuple[list[int], list[str], list[Any]]:
    """Batch sizes, the cursors open while reading, and the rows."""
    sizes: list[int] = []
    cursors: list[str] = []
    rows: list[Any] = []
    async with await connect_async(db_url, autocommit=True) as conn:
        async for chunk in export_persons(conn, filters, sort="followers", batch=batch):
            sizes.append(len(chunk))
            rows += chunk
            found = await conn.execute("SELECT name FROM pg_cursors WHERE is_holdable IS FALSE")
            cursors += [row[0] for row in await found.fetchall()]
        left = await conn.execute("SELECT count(*) FROM pg_cursors")
        assert await left.fetchone() == (0,)  # closed with its transaction
        expected = await list_persons(conn, filters, limit=1000)
    assert rows == expected
    return sizes, cursors, rows


@pytest.mark.parametrize(
    ("filters", "count"), [(PersonFilter(), 25), (PersonFilter(watch=True), 12)]
)
def test_batches_from_a_server_side_cursor(
    db: psycopg.Connection[Any], db_url: str, filters: PersonFilter, count: int
) -> None:
    _persons(db, 25)
    sizes, cursors, rows = asyncio.run(_read(db_url, filters, 10))
    assert len(rows) == count
    assert sizes == [10] * (count // 10) + [count % 10]
    assert set(cursors) == {"roomwatch_export"}


def test_follow_events_in_batches(db: psycopg.Connection[Any], db_url: str) -> None:
    _persons(db, 5)
    db.execute("INSERT INTO accounts (account) VALUES ('owner')")
    db.execute(
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source) "
        "SELECT 'owner', person_id, 'followed', now() - person_id * interval '1 minute', "
        "'followers' FROM persons"
    )
    db.commit()

    async def read() -> list[list[str]]:
        async with await connect_async(db_url, autocommit=True) as conn:
            return [
                [e.username for e in chunk]
                async for chunk in export_follow_events(conn, "owner", batch=2)
            ]

    assert asyncio.run(read()) == [["p1", "p2"], ["p3", "p4"], ["p5"]]
