"""``/room``: My room, the owner's own room from the Events and Stats APIs.

* A live event feed: the newest :data:`FEED_SIZE` events, the read of ``GET /api/v1/room/events``
  (:func:`control_api.room.room_event_page`). Its block carries ``data-refresh="/room/feed"``:
  ``static/app.js`` swaps in the fragment every :data:`FEED_REFRESH_MS` ms under the page's
  session cookie (the JSON API never takes the cookie), so new events appear without a reload.
* Followers gained and lost today (since 00:00 UTC), from every source of follow events
  (:func:`storage.room.follower_changes`), the newest 50 named.
* Top tippers, recent visitors and the broadcasts with their figures: the reads of the
  ``/room/tippers``, ``/room/visitors`` and ``/room/broadcasts`` routes, over the chosen range.
* The Stats API charts (followers, viewers, token balance) over the range, drawn by
  :func:`web.charts.time_chart` as the profile page draws its own.

With no ``events.url`` (and no ``stats.url``) the page says what to set instead of showing
empty tables. With URLs of several accounts the page shows the account its ``account=`` names or
this browser chose last (:func:`web.account_choice.page_account`; the feed's refreshes read the
same), else the 400 page offering the header's switcher. Everything a visitor of the room
wrote (names, chat, tip notes, the subject) is escaped by the templates' autoescape.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template
from markupsafe import Markup

from control_api.params import Db
from control_api.room import room_event_page
from roomwatch.config import Config
from storage.room import StatsPoint, follower_changes, stats_series
from storage.room_figures import list_broadcasts, list_tippers, list_visitors, tip_totals
from web.account_choice import page_account
from web.charts import time_chart
from web.pages import query
from web.pages.profile import RANGES
from web.templating import page

FEED_SIZE = 50
FEED_REFRESH_MS = 3000
TOP = 10
FOLLOWER_NAMES = 50  # the newest changes of today named on the page (all are counted)
DEFAULT_RANGE = "24h"
# Stats field, chart title.
STATS_CHARTS: tuple[tuple[str, str], ...] = (
    ("num_followers", "Followers"),
    ("num_viewers", "Viewers"),
    ("token_balance", "Token balance"),
)
STATS_GAP = dt.timedelta(minutes=30)  # the Stats API answers every 5 minutes; longer: a gap


async def _owners(
    request: Request[Any, Any, Any], db: Db, config: Config
) -> tuple[str | None, str | None]:
    """Whose events and whose Stats answers the page shows: with at most one Events and one
    Stats URL and no ``account=``, theirs; else the account named or chosen (its events if it
    has an Events URL, its charts if it has a Stats URL).

    Raises:
        InvalidInput: an unknown ``account=``, or several accounts and none named or chosen.
    """
    events, stats = config.events.streams, config.stats.streams
    given = request.query_params.get("account")
    if len(events) <= 1 and len(stats) <= 1 and not given:
        return config.events.account or None, config.stats.account or None
    chosen = (await page_account(request, db, given)).account
    return (chosen if chosen in events else None), (chosen if chosen in stats else None)


class _Point(msgspec.Struct, frozen=True):
    """A chart point (:class:`web.charts.ChartPoint`) of one Stats API field."""

    at: dt.datetime
    value: int
    source: str = "stats_api"


def stats_charts(
    points: list[StatsPoint], start: dt.datetime, end: dt.datetime
) -> dict[str, Markup]:
    """One chart per field of :data:`STATS_CHARTS` (unknown values, ``-1``, are left out)."""
    charts = {}
    for name, title in STATS_CHARTS:
        series = [
            _Point(p.observed_at, value) for p in points if (value := getattr(p, name)) is not None
        ]
        charts[name] = time_chart(
            series,
            start=start,
            end=end,
            label=title,
            max_gap=STATS_GAP,
            attrs={"data-metric": name},
        )
    return charts


async def _feed(db: Db, account: str | None) -> dict[str, Any]:
    events = (await room_event_page(db, account, limit=FEED_SIZE)).items if account else []
    return {"events": events, "interval": FEED_REFRESH_MS, "account": account}


class RoomController(Controller):
    """My room, and its live feed's fragment."""

    path = "/room"
    include_in_schema = False

    @get("/")
    async def room(
        self, request: Request[Any, Any, Any], db: Db, config: NamedDependency[Config]
    ) -> Template:
        chosen = query.choice(request.query_params, "range", tuple(RANGES), DEFAULT_RANGE)
        end = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start = end - RANGES[chosen][1]
        # The events' parts need the Events URL, the charts the Stats URL (the API's routes
        # fall back from one account to the other; the page says which setting is missing).
        account, stats_account = await _owners(request, db, config)
        context: dict[str, Any] = {
            "ranges": {key: label for key, (label, _) in RANGES.items()},
            "range": chosen,
            "start": start,
            "end": end,
            "events_configured": account is not None,
            "stats_configured": stats_account is not None,
            "tippers": [],
            "totals": None,
            "visitors": [],
            "broadcasts": [],
            "charts": {},
        }
        context.update(await _feed(db, account))
        today = dt.datetime.combine(end.date(), dt.time(), dt.UTC)
        context["followers"] = await follower_changes(
            db, account or stats_account, today, limit=FOLLOWER_NAMES
        )
        if account:
            context["tippers"] = await list_tippers(db, account, start, end, limit=TOP)
            context["totals"] = await tip_totals(db, account, start, end)
            context["visitors"] = await list_visitors(db, account, start, end, limit=TOP)
            context["broadcasts"] = await list_broadcasts(db, account, limit=TOP)
        if stats_account:
            points = await stats_series(db, stats_account, start, end)
            context["charts"] = stats_charts(points, start, end)
        return page(request, "room.html", chart_titles=dict(STATS_CHARTS), **context)

    @get("/feed")
    async def feed(
        self, request: Request[Any, Any, Any], db: Db, config: NamedDependency[Config]
    ) -> Template:
        """Just the feed's block, for ``app.js`` to swap in."""
        account, _ = await _owners(request, db, config)
        return page(request, "_room_feed.html", **await _feed(db, account))
