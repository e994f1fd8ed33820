"""The ``/exports`` routes: the person list and the follow events, every row, as CSV or JSON.

``GET /exports/persons`` takes the filters and sort of ``GET /persons`` (one declaration:
:mod:`control_api.person_filters`) and ``GET /exports/follow-events`` those of
``GET /follow-events``; each answers every matching row, in the list's order, as an attachment.
The body is streamed: rows come from a server-side cursor (:mod:`storage.exports`) a batch at a
time and are encoded as they come (:mod:`control_api.export_formats`, which also says how CSV
cells are written and why text cells starting with ``= + - @`` get a leading single quote), so
an export of 100,000 persons holds one batch in memory, never the list.

Parameters are checked before the first byte is sent (a bad one is a 400 problem naming it);
the export then holds one pool connection until its last row. A database failure after the
first byte can only cut the body short (the status line is gone); it is logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Stream
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from control_api.export_formats import MEDIA_TYPES, ExportFormat, body
from control_api.params import EventKind, EventsSince, as_utc
from control_api.person_filters import FollowAccount, PersonFilters, Sort
from control_api.problems import BAD_REQUEST_RESPONSES
from storage.exports import export_follow_events, export_persons
from storage.person_list import PersonSummary
from storage.person_queries import FollowEvent

log = logging.getLogger(__name__)
Format = Annotated[
    ExportFormat, QueryParameter(name="format", description="csv (RFC 4180) or json (one array)")
]
Batches = AsyncIterator[Sequence[msgspec.Struct]]


def _attachment(name: str, export_format: ExportFormat) -> dict[str, str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return {
        "Content-Disposition": f'attachment; filename="roomwatch-{name}-{stamp}.{export_format}"'
    }


def stream_export(
    pool: AsyncConnectionPool[Any],
    name: str,
    export_format: ExportFormat,
    fields: Sequence[str],
    read: Callable[[AsyncConnection[Any]], Batches],
) -> Stream:
    """The streamed attachment of ``read``'s rows in ``export_format`` (the export routes', and
    the Follow page's exports: ``web/pages/follow.py``), on a connection of ``pool`` held until
    the last row."""

    async def content() -> AsyncIterator[bytes]:
        try:
            async with pool.connection() as conn:
                async for chunk in body(export_format, fields, read(conn)):
                    yield chunk
        except Exception as exc:
            # The status line went out with the first chunk; all that is left is to say so.
            log.error("export of %s failed after it started: %s", name, type(exc).__name__)
            raise

    return Stream(
        content(), media_type=MEDIA_TYPES[export_format], headers=_attachment(name, export_format)
    )


class ExportController(Controller):
    """Whole lists as files, for spreadsheets and scripts."""

    path = "/exports"
    tags = ("exports",)

    @get(
        "/persons",
        summary="Every person the list keeps under the filters, as CSV or JSON, streamed",
        responses=BAD_REQUEST_RESPONSES,
    )
    async def persons(
        self,
        state: State,
        export_format: Format,
        person_filter: PersonFilters,
        sort: Sort = "followers",
    ) -> Stream:
        """The rows of ``GET /persons`` with the same filters and sort, all pages, with the
        follow durations."""
        return stream_export(
            state.pool,
            "persons",
            export_format,
            PersonSummary.__struct_fields__,
            lambda conn: export_persons(conn, person_filter, sort=sort),
        )

    @get(
        "/follow-events",
        summary="Every follow event matching kind and since, as CSV or JSON, streamed",
        responses=BAD_REQUEST_RESPONSES,
    )
    async def follow_events(
        self,
        state: State,
        export_format: Format,
        follow_account: FollowAccount,
        kind: EventKind = None,
        since: EventsSince = None,
    ) -> Stream:
        """The rows of ``GET /follow-events`` with the same filters, newest first, all pages."""
        start = as_utc(since)
        return stream_export(
            state.pool,
            "follow-events",
            export_format,
            FollowEvent.__struct_fields__,
            lambda conn: export_follow_events(conn, follow_account.account, kind=kind, since=start),
        )
