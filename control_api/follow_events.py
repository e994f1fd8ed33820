"""The ``/follow-events`` route: follow-state changes, newest first, with their time and job."""

from __future__ import annotations

import datetime as dt

from litestar import Controller, get

from control_api.cursors import decode_cursor, encode_cursor
from control_api.params import Cursor, Db, EventKind, EventsSince, Limit, as_utc
from control_api.person_filters import FollowAccount
from control_api.problems import BAD_REQUEST_RESPONSES
from control_api.schemas import FollowEventPage
from roomwatch.errors import InvalidInput
from storage.person_queries import list_follow_events

_CURSOR_KIND = "follow-events"


class FollowEventController(Controller):
    """Followed / unfollowed (by the owner) and new / lost followers (of the owner)."""

    path = "/follow-events"
    tags = ("follow events",)

    @get("/", summary="Follow events, newest first, one page", responses=BAD_REQUEST_RESPONSES)
    async def index(
        self,
        db: Db,
        follow_account: FollowAccount,
        kind: EventKind = None,
        since: EventsSince = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> FollowEventPage:
        """The account's events (``account=``, default the only one) matching ``kind`` and
        ``since``; resumes after ``cursor`` when given."""
        after = None
        if cursor is not None:
            when, event_id = decode_cursor(cursor, _CURSOR_KIND, dt.datetime)
            if when is None:
                raise InvalidInput("cursor", "not a cursor this API issued", source="query")
            after = (when, event_id)
        rows = await list_follow_events(
            db, follow_account.account, kind=kind, since=as_utc(since), limit=limit + 1, after=after
        )
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(_CURSOR_KIND, items[-1].occurred_at, items[-1].event_id)
        return FollowEventPage(items=items, next_cursor=next_cursor)
