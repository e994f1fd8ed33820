"""Query, path and dependency parameters shared by the read routes, and their checks.

Parameters are declared explicitly (``QueryParameter``, ``PathParameter``, ``NamedDependency``)
so the OpenAPI schema carries their names, bounds and descriptions; checks that span two
parameters (a time range) raise 400 problem details naming one of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from control_api.person_cache import PersonCache
from roomwatch.errors import InvalidInput
from storage.person_queries import FollowEventKind

DEFAULT_RANGE = dt.timedelta(days=7)
LONGEST_RANGE = dt.timedelta(days=90)
EARLIEST, LATEST = 2000, 2200

Db = NamedDependency[AsyncConnection[Any]]
# The pool itself, for a route that must not hold a connection while it waits (a browser probe).
Pool = NamedDependency[AsyncConnectionPool[Any]]
Persons = NamedDependency[PersonCache]  # merged persons, cached between writes
Username = Annotated[str, PathParameter(description="the username, any case", max_length=100)]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="rows per page (1-200)")]
Cursor = Annotated[
    str | None,
    QueryParameter(max_length=200, description="the previous page's next_cursor, verbatim"),
]
Since = Annotated[
    dt.datetime | None,
    QueryParameter(
        name="from", description="start, RFC 3339 (no offset: UTC); default: to - 7 days"
    ),
]
EventKind = Annotated[FollowEventKind | None, QueryParameter(description="one kind; default: all")]
EventsSince = Annotated[
    dt.datetime | None,
    QueryParameter(description="only events at or after this time (RFC 3339)"),
]
Until = Annotated[
    dt.datetime | None,
    QueryParameter(description="end, exclusive, RFC 3339 (no offset: UTC); default: now"),
]


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A time without an offset is taken to be UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def time_range(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    """``[from, to)`` with defaults applied; at most :data:`LONGEST_RANGE` long, else a 400."""
    until = as_utc(end) or dt.datetime.now(dt.UTC)
    for name, moment in (("from", start), ("to", until)):
        # Found by the schema fuzzer: year 1 minus the default range overflowed into a 500.
        if moment is not None and not EARLIEST <= moment.year <= LATEST:
            raise InvalidInput(
                name, f"must be between the years {EARLIEST} and {LATEST}", source="query"
            )
    since = as_utc(start) or until - DEFAULT_RANGE
    if since >= until:
        raise InvalidInput("from", "must be earlier than to", source="query")
    if until - since > LONGEST_RANGE:
        raise InvalidInput(
            "from", f"the range may span at most {LONGEST_RANGE.days} days", source="query"
        )
    return since, until
