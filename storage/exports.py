"""Exports: every row of the person list or of the follow events, read in batches.

An export is the list's own query (the same composition, filters and order:
:func:`storage.person_list.list_persons_query`, :func:`storage.person_queries.follow_events_query`,
:func:`storage.follow_lists.ended_query`)
without a limit, read through a server-side cursor, so neither the database driver nor the
caller holds more than one batch: 100,000 persons stream in the memory of a thousand. The cursor
lives in one transaction (one snapshot: a write during the export shows in none of its rows or
in all of them) on the connection the caller lends for the whole export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from psycopg import AsyncConnection, sql
from psycopg.rows import BaseRowFactory, args_row, class_row

from storage.follow_lists import EndedFollow, EndedList, ended_query
from storage.person_list import PersonFilter, PersonSort, PersonSummary, list_persons_query
from storage.person_queries import FollowEvent, FollowEventKind, follow_events_query

T = TypeVar("T")
BATCH_ROWS = 1000
"""Rows fetched from the cursor at a time (and handed to the caller as one list)."""
_CURSOR = "roomwatch_export"


async def _batches(
    conn: AsyncConnection[Any],
    query: bytes | sql.Composed,
    params: dict[str, Any],
    row_factory: BaseRowFactory[T],
    batch: int,
) -> AsyncIterator[list[T]]:
    async with conn.transaction(), conn.cursor(_CURSOR, row_factory=row_factory) as cursor:
        await cursor.execute(query, params)
        while rows := await cursor.fetchmany(batch):
            yield rows


def export_persons(
    conn: AsyncConnection[Any],
    filters: PersonFilter,
    *,
    sort: PersonSort = "followers",
    batch: int = BATCH_ROWS,
) -> AsyncIterator[list[PersonSummary]]:
    """Every person the list keeps under ``filters``, in its ``sort`` order, ``batch`` at a
    time; each row carries the follow durations, as a list page's rows do."""
    query, params = list_persons_query(filters, sort=sort, limit=None, after=None)
    return _batches(conn, query, params, args_row(PersonSummary), batch)


def export_follow_events(
    conn: AsyncConnection[Any],
    account: str | None,
    *,
    kind: FollowEventKind | None = None,
    since: dt.datetime | None = None,
    batch: int = BATCH_ROWS,
) -> AsyncIterator[list[FollowEvent]]:
    """Every follow event of ``account`` of ``kind`` at or after ``since``, newest first,
    ``batch`` at a time."""
    query, params = follow_events_query(
        account=account, kind=kind, since=since, limit=None, after=None
    )
    return _batches(conn, query, params, class_row(FollowEvent), batch)


def export_ended(
    conn: AsyncConnection[Any], which: EndedList, account: str | None, *, batch: int = BATCH_ROWS
) -> AsyncIterator[list[EndedFollow]]:
    """Every person of ``which`` (unfollowed, lost followers) of ``account``, newest end first,
    ``batch`` at a time: their list rows with since, until and the seconds between."""
    query, params = ended_query(which, account, limit=None, after=None)
    return _batches(conn, query, params, args_row(EndedFollow), batch)
