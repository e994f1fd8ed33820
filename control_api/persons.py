"""The ``/persons`` routes: the merged current state, one person with provenance, and history.

Controllers only check and convert parameters, call one ``storage`` read and wrap the result;
every bad parameter is a 400 problem details naming it (see :mod:`control_api.problems`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeVar

from litestar import Controller, get
from litestar.params import QueryParameter
from psycopg import AsyncConnection

from control_api.cursors import decode_cursor, encode_cursor
from control_api.images import PersonDetailWithImage, with_image
from control_api.params import (
    Cursor,
    Db,
    Limit,
    Persons,
    Since,
    Until,
    Username,
    time_range,
)
from control_api.person_filters import Account, PersonFilters, Sort
from control_api.problems import BAD_REQUEST_RESPONSES, NOT_FOUND_RESPONSES
from control_api.schemas import Activity, History, PersonPage, Snapshots
from roomwatch.errors import InvalidInput, NotFound
from storage.person_list import PersonFilter, PersonSort, SortValue, list_persons, sort_value
from storage.person_series import (
    Metric,
    Resolution,
    SnapshotSource,
    metric_history,
    person_activity,
    person_snapshots,
)

T = TypeVar("T")

# "auto" reads raw observations up to this range and the hourly rollup beyond it.
RAW_AUTO_RANGE = dt.timedelta(days=2)
LONGEST_RAW_RANGE = dt.timedelta(days=7)


def history_resolution(
    since: dt.datetime, until: dt.datetime, asked: Literal["auto", "raw", "hour"] = "auto"
) -> Resolution:
    """The resolution of a history read: the one asked for, or for ``auto`` raw points up to
    :data:`RAW_AUTO_RANGE` and hourly summaries beyond (the history route's and the Profile
    page's rule)."""
    if asked != "auto":
        return asked
    return "raw" if until - since <= RAW_AUTO_RANGE else "hour"


def _found(value: T | None, username: str) -> T:
    if value is None:
        raise NotFound("username", f"no person named {username!r}")
    return value


async def person_page(
    db: AsyncConnection[Any],
    filters: PersonFilter,
    sort: PersonSort,
    limit: int,
    cursor: str | None,
) -> PersonPage:
    """One page of the person list after ``cursor`` (the list route's and the Users page's).

    Raises:
        ProblemDetailsException: 400 naming ``cursor`` when it is not one for this sort.
    """
    kind = f"persons:{sort}"
    after: tuple[SortValue, int] | None = None
    if cursor is not None and sort == "last_seen":
        after = decode_cursor(cursor, kind, dt.datetime)
    elif cursor is not None:
        after = decode_cursor(cursor, kind, int)
    rows = await list_persons(db, filters, sort=sort, limit=limit + 1, after=after)
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(kind, sort_value(last, sort), last.person_id)
    return PersonPage(items=items, next_cursor=next_cursor)


class PersonController(Controller):
    """Merged current state and history of persons, addressed by username (any case)."""

    path = "/persons"
    tags = ("persons",)

    @get(
        "/",
        summary="Merged current state of persons, filtered, sorted, one page",
        responses=BAD_REQUEST_RESPONSES,
    )
    async def index(
        self,
        db: Db,
        person_filter: PersonFilters,
        sort: Sort = "followers",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PersonPage:
        """Persons matching every filter given, in ``sort`` order, then by an internal id."""
        return await person_page(db, person_filter, sort, limit, cursor)

    @get(
        "/{username:str}",
        summary="One person's merged state, each field with its source",
        responses=NOT_FOUND_RESPONSES,
    )
    async def detail(
        self, persons: Persons, username: Username, account: Account = None
    ) -> PersonDetailWithImage:
        """404 problem details when nobody has that username. ``image`` prefers the local copy
        of the picture (upstream URLs expire). The follow state is what any account knows, or
        with ``account`` that account's (400 when it is not an account here)."""
        return with_image(_found(await persons.get(username, account), username))

    @get(
        "/{username:str}/history",
        summary="Time series of one metric, from every source",
        responses=NOT_FOUND_RESPONSES,
    )
    async def history(
        self,
        db: Db,
        username: Username,
        metric: Annotated[Metric, QueryParameter(description="what to plot")],
        from_: Since = None,
        to: Until = None,
        resolution: Annotated[
            Literal["auto", "raw", "hour"],
            QueryParameter(
                description="raw: every observation (ranges up to 7 days); hour: hourly "
                "summaries; auto: raw up to 2 days, else hour"
            ),
        ] = "auto",
    ) -> History:
        """Points in ``[from, to)``, oldest first, each with the source that reported it."""
        since, until = time_range(from_, to)
        if resolution == "raw" and until - since > LONGEST_RAW_RANGE:
            raise InvalidInput(
                "resolution",
                f"raw spans at most {LONGEST_RAW_RANGE.days} days; use hour",
                source="query",
            )
        chosen = history_resolution(since, until, resolution)
        points = await metric_history(
            db, username, metric, start=since, end=until, resolution=chosen
        )
        return History(
            username=username.lower(),
            metric=metric,
            resolution=chosen,
            from_=since,
            to=until,
            points=_found(points, username),
        )

    @get(
        "/{username:str}/activity",
        summary="Daily online time and 3-minute online samples",
        responses=NOT_FOUND_RESPONSES,
    )
    async def activity(
        self, db: Db, username: Username, from_: Since = None, to: Until = None
    ) -> Activity:
        """CBHours activity in ``[from, to)``; daily totals for every UTC date it touches."""
        since, until = time_range(from_, to)
        found = _found(await person_activity(db, username, start=since, end=until), username)
        return Activity(
            username=username.lower(),
            from_=since,
            to=until,
            daily=found.daily,
            segments=found.segments,
        )

    @get(
        "/{username:str}/snapshots",
        summary="What each source said, raw, newest first",
        responses=NOT_FOUND_RESPONSES,
    )
    async def snapshots(
        self,
        db: Db,
        username: Username,
        source: Annotated[
            SnapshotSource | None, QueryParameter(description="one source; default: both")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="rows (1-200)")] = 20,
    ) -> Snapshots:
        """The newest per-poll observations of one source, or of both merged by time."""
        items = await person_snapshots(db, username, source=source, limit=limit)
        return Snapshots(username=username.lower(), items=_found(items, username))
