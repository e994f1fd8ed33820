"""The ``/room/*`` routes: the owner's room from the Events API (events, tippers, visitors,
broadcasts) and the Stats API (the series), read through :mod:`storage.room` and
:mod:`storage.room_figures`.

The account is the owner's username: ``account=`` when given, else the one the configured
Events URL names (``events.url``), else the Stats URL's (``stats.url``; the stats route
prefers it). With neither set and no ``account=``, every route answers 404 naming
``account``: the install knows no room (the detail says which settings to set); with URLs of
several accounts, a 400 naming them. The URLs and
their tokens are never part of an answer. Ranges (``from``, ``to``) are the person history's:
``[from, to)``, ``to`` defaults to now and ``from`` to 7 days before it, at most 90 days.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from control_api.cursors import decode_key, encode_cursor
from control_api.params import Cursor, Db, Limit, Since, Until, as_utc, time_range
from control_api.problems import BAD_REQUEST_RESPONSES, problem_spec
from roomwatch.config import Config
from roomwatch.errors import AccountNotChosen, InvalidInput, NotFound
from storage.records import RoomEventRow, RoomMethod
from storage.room import StatsPoint, list_room_events, stats_series
from storage.room_figures import (
    VISITOR_SORTS,
    Broadcast,
    Tipper,
    TipTotals,
    Visitor,
    VisitorSort,
    list_broadcasts,
    list_tippers,
    list_visitors,
    tip_totals,
)

Account = Annotated[
    str | None,
    QueryParameter(max_length=100, description="the owner's username; default: the configured one"),
]
Methods = Annotated[
    list[RoomMethod] | None,
    QueryParameter(description="only these methods (repeat the parameter); default: all"),
]
EventsFrom = Annotated[
    dt.datetime | None, QueryParameter(description="only events at or after this time (RFC 3339)")
]
EventsUntil = Annotated[
    dt.datetime | None, QueryParameter(description="only events before this time (RFC 3339)")
]
EventUser = Annotated[
    str | None, QueryParameter(max_length=100, description="only events about this user")
]
Sort = Annotated[VisitorSort, QueryParameter(description="latest or largest first")]
NO_ROOM = (
    "roomwatch knows no room: set events.url (ROOMWATCH_EVENTS_URL) for the events and "
    "stats.url (ROOMWATCH_STATS_URL) for the Stats API, or name the account with account="
)


def room_account(config: Config, account: str | None = None, *, stats: bool = False) -> str:
    """Whose room a read is about: ``account`` (any case), else the configured owner (the
    Stats URL's first for ``stats``); :class:`NotFound` naming ``account`` when none is."""
    if account:
        return account.lower()
    several = sorted({*config.events.streams, *config.stats.streams})
    if len(config.events.streams) > 1 or len(config.stats.streams) > 1:
        raise AccountNotChosen(several)
    first, second = config.events.account, config.stats.account
    owner = (second or first) if stats else (first or second)
    if not owner:
        raise NotFound("account", NO_ROOM)
    return owner


ROOM_RESPONSES = {
    **BAD_REQUEST_RESPONSES,
    404: problem_spec("No room: neither events.url nor stats.url is set, and no account="),
}


class RoomEventPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the room's events, newest first; pass ``next_cursor`` back as ``cursor``."""

    account: str
    items: list[RoomEventRow]
    next_cursor: str | None


class RoomStats(msgspec.Struct, frozen=True, kw_only=True):
    """The Stats API's answers over ``[from, to)``, oldest first."""

    account: str
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    points: list[StatsPoint]


class TipperPage(msgspec.Struct, frozen=True, kw_only=True):
    """Who tipped over ``[from, to)``, biggest total first; ``totals`` counts every tip, with
    the anonymous ones (no person's) apart."""

    account: str
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    totals: TipTotals
    items: list[Tipper]
    next_cursor: str | None


class VisitorPage(msgspec.Struct, frozen=True, kw_only=True):
    """Who entered the room over ``[from, to)``, by ``sort``."""

    account: str
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    sort: VisitorSort
    items: list[Visitor]
    next_cursor: str | None


class BroadcastPage(msgspec.Struct, frozen=True, kw_only=True):
    """The room's broadcasts, newest first, with what happened during each."""

    account: str
    items: list[Broadcast]
    next_cursor: str | None


def _after_event(cursor: str | None, kind: str) -> tuple[dt.datetime, str] | None:
    if cursor is None:
        return None
    when, key = decode_key(cursor, kind, dt.datetime, str)
    if when is None:
        raise InvalidInput("cursor", "not a cursor this API issued", source="query")
    return when, key


async def room_event_page(
    db: Db,
    account: str,
    *,
    methods: list[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    username: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RoomEventPage:
    """One page of ``GET /room/events`` (the My room page's feed reads it too)."""
    kind = "room-events"
    rows = await list_room_events(
        db,
        account,
        methods=methods,
        since=since,
        until=until,
        username=username,
        limit=limit + 1,
        after=_after_event(cursor, kind),
    )
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(kind, items[-1].occurred_at, items[-1].event_id)
    return RoomEventPage(account=account, items=items, next_cursor=next_cursor)


class RoomController(Controller):
    """The owner's room: the Events API stream and what is derived from it, and the Stats API."""

    path = "/room"
    tags = ("room",)

    @get("/events", summary="The room's events, newest first", responses=ROOM_RESPONSES)
    async def events(
        self,
        db: Db,
        config: NamedDependency[Config],
        method: Methods = None,
        since: EventsFrom = None,
        until: EventsUntil = None,
        username: EventUser = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        account: Account = None,
    ) -> RoomEventPage:
        """Events of ``method`` (any of them), in ``[since, until)``, about ``username``."""
        start, end = as_utc(since), as_utc(until)
        if start is not None and end is not None and start >= end:
            raise InvalidInput("since", "must be earlier than until", source="query")
        return await room_event_page(
            db,
            room_account(config, account),
            methods=list(method) if method else None,
            since=start,
            until=end,
            username=username,
            limit=limit,
            cursor=cursor,
        )

    @get("/stats", summary="The Stats API series", responses=ROOM_RESPONSES)
    async def stats(
        self,
        db: Db,
        config: NamedDependency[Config],
        from_: Since = None,
        to: Until = None,
        account: Account = None,
    ) -> RoomStats:
        """Every Stats API answer stored for ``[from, to)`` (one every 5 minutes)."""
        owner = room_account(config, account, stats=True)
        since, until = time_range(from_, to)
        points = await stats_series(db, owner, since, until)
        return RoomStats(account=owner, from_=since, to=until, points=points)

    @get("/tippers", summary="Tippers, biggest total first", responses=ROOM_RESPONSES)
    async def tippers(
        self,
        db: Db,
        config: NamedDependency[Config],
        from_: Since = None,
        to: Until = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        account: Account = None,
    ) -> TipperPage:
        """Per person: total tokens, number of tips, last tip; anonymous tips only in totals."""
        owner = room_account(config, account)
        since, until = time_range(from_, to)
        kind = "room-tippers"
        after = None
        if cursor is not None:
            tokens, name = decode_key(cursor, kind, int, str)
            if tokens is None:
                raise InvalidInput("cursor", "not a cursor this API issued", source="query")
            after = (tokens, name)
        rows = await list_tippers(db, owner, since, until, limit=limit + 1, after=after)
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(kind, items[-1].tokens, items[-1].username)
        totals = await tip_totals(db, owner, since, until)
        return TipperPage(
            account=owner,
            from_=since,
            to=until,
            totals=totals,
            items=items,
            next_cursor=next_cursor,
        )

    @get("/visitors", summary="Visitors of the room", responses=ROOM_RESPONSES)
    async def visitors(
        self,
        db: Db,
        config: NamedDependency[Config],
        from_: Since = None,
        to: Until = None,
        sort: Sort = "last_seen",
        limit: Limit = 50,
        cursor: Cursor = None,
        account: Account = None,
    ) -> VisitorPage:
        """Per person: visits (enters), last seen, time spent (see docs/architecture.md for
        how a visit ends); ``in_room``: the latest visit was still open at ``to``."""
        owner = room_account(config, account)
        since, until = time_range(from_, to)
        kind = f"room-visitors:{sort}"
        column, value_type = VISITOR_SORTS[sort]
        after = None
        if cursor is not None:
            value, name = decode_key(cursor, kind, value_type, str)
            if value is None:
                raise InvalidInput("cursor", "not a cursor this API issued", source="query")
            after = (value, name)
        rows = await list_visitors(db, owner, since, until, sort=sort, limit=limit + 1, after=after)
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(kind, getattr(last, column), last.username)
        return VisitorPage(
            account=owner, from_=since, to=until, sort=sort, items=items, next_cursor=next_cursor
        )

    @get("/broadcasts", summary="Broadcasts, newest first", responses=ROOM_RESPONSES)
    async def broadcasts(
        self,
        db: Db,
        config: NamedDependency[Config],
        limit: Limit = 20,
        cursor: Cursor = None,
        account: Account = None,
    ) -> BroadcastPage:
        """Sessions from broadcastStart / broadcastStop with their duration, followers gained
        and lost, tips and visitors."""
        owner = room_account(config, account)
        kind = "room-broadcasts"
        rows = await list_broadcasts(db, owner, limit=limit + 1, after=_after_event(cursor, kind))
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(kind, items[-1].started_at, items[-1].broadcast_id)
        return BroadcastPage(account=owner, items=items, next_cursor=next_cursor)
