"""``/users/{username}``: one person's profile, with history charts, online heatmap and raw data.

The person is read as ``GET /api/v1/persons/{username}`` reads it (the ``persons`` cache); the
charts are the same reads as ``GET .../history`` (:func:`storage.person_series.metric_history`
at the resolution :func:`control_api.persons.history_resolution` picks), so a chart carries
exactly the API's points for the same range. ``all`` is bounded by the longest range the API
serves (:data:`control_api.params.LONGEST_RANGE`): beyond it the hourly rollup could hold years
of points, more than a page can show.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, get_args

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from markupsafe import Markup

from control_api.params import LONGEST_RANGE, Db, Persons, Username
from control_api.persons import history_resolution
from roomwatch.errors import InvalidInput, NotFound
from storage.person_queries import (
    FieldSource,
    FollowEvent,
    PersonDetail,
    for_account,
    list_follow_events,
)
from storage.person_series import (
    Metric,
    OnlineSample,
    SnapshotSource,
    metric_history,
    person_activity,
    person_snapshots,
)
from storage.watch_list import is_muted_async, set_mute_async, set_watch_async
from web.account_choice import page_account
from web.charts import heatmap, time_chart
from web.pages import query
from web.pages.users import GENDERS
from web.templating import page

RANGES: dict[str, tuple[str, dt.timedelta]] = {
    "24h": ("24 h", dt.timedelta(hours=24)),
    "7d": ("7 d", dt.timedelta(days=7)),
    "30d": ("30 d", dt.timedelta(days=30)),
    "all": (f"all ({LONGEST_RANGE.days} d)", LONGEST_RANGE),
}
DEFAULT_RANGE = "7d"
# Metric, title, smallest on top (ranks: 1 is best).
CHARTS: tuple[tuple[Metric, str, bool], ...] = (
    ("followers", "Followers", False),
    ("rank", "Rank", True),
    ("grank", "Global rank", True),
)
# A source's line breaks where its points are further apart than this (the person was away).
LINE_GAPS = {"raw": dt.timedelta(minutes=30), "hour": dt.timedelta(hours=2)}
HEATMAP_DAYS = 30
SEGMENT_MINUTES = 3  # a CBHours activity sample stands for 3 minutes online
SNAPSHOT_LIMIT = 20
EVENT_LIMIT = 100
EVENT_LABELS = {
    "followed": "You followed them",
    "unfollowed": "You unfollowed them",
    "new_follower": "They followed you",
    "lost_follower": "They unfollowed you",
}
# An ending event -> the event that began what it ends.
_BEGAN_BY = {"unfollowed": "followed", "lost_follower": "new_follower"}


def _found(person: PersonDetail | None, username: str) -> PersonDetail:
    if person is None:
        raise NotFound("username", f"Nobody named {username!r} is known to roomwatch.")
    return person


def fields(person: PersonDetail) -> list[dict[str, Any]]:
    """Every merged field as ``{name, label, value, source}`` (value as shown, None: unknown)."""
    p, s = person, person.sources
    online = None if p.online is None else "online" if p.online else "offline"
    gender = GENDERS.get(p.gender, p.gender) if p.gender else None
    picture = "stored copy" if p.image_id else "not stored yet" if p.image_url else None
    rows: list[tuple[str, str, object, FieldSource]] = [
        ("display_name", "Display name", p.display_name, s.display_name),
        ("online", "Online", online, s.online),
        ("current_show", "Show", p.current_show, s.current_show),
        ("viewers", "Viewers", p.viewers, s.viewers),
        ("followers", "Followers", p.followers, s.followers),
        ("rank", "Rank", p.rank, s.rank),
        ("grank", "Global rank", p.grank, s.grank),
        ("subject", "Subject", p.subject, s.subject),
        ("tags", "Tags", None if p.tags is None else ", ".join(p.tags) or "none", s.tags),
        ("gender", "Gender", gender, s.gender),
        ("age", "Age", p.age, s.age),
        ("birthday", "Birthday", p.birthday.isoformat() if p.birthday else None, s.birthday),
        ("location", "Location", p.location, s.location),
        ("country", "Country", p.country, s.country),
        ("spoken_languages", "Languages", p.spoken_languages, s.spoken_languages),
        # The picture's source, never its upstream URL (the page shows the stored copy).
        ("image_url", "Picture", picture, s.image_url),
    ]
    return [
        {"name": name, "label": label, "value": value, "source": source}
        for name, label, value, source in rows
    ]


def with_durations(
    events: Sequence[FollowEvent],
    *,
    following: bool | None,
    follower: bool | None,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The events (newest first) as rows with how long each relation lasted: an unfollow or a
    lost follower after its follow (``lasted``), and the newest follow still in force until now
    (``ongoing``) while ``following`` / ``follower`` says it still holds. An end whose start is
    older than the events read has no duration."""
    open_since: dict[str, int] = {}  # beginning kind -> index of its row, while unmatched
    rows: list[dict[str, Any]] = []
    for event in reversed(events):
        row: dict[str, Any] = {"e": event, "label": EVENT_LABELS.get(event.kind, event.kind),
                               "lasted": None, "ongoing": False}  # fmt: skip
        began = _BEGAN_BY.get(event.kind)
        if began is None:
            open_since[event.kind] = len(rows)
        elif began in open_since:
            start = rows[open_since.pop(began)]["e"].occurred_at
            row["lasted"] = (event.occurred_at - start).total_seconds()
        rows.append(row)
    still = {"followed": following, "new_follower": follower}
    for kind, index in open_since.items():
        if still.get(kind):
            rows[index]["ongoing"] = True
            rows[index]["lasted"] = (now - rows[index]["e"].occurred_at).total_seconds()
    return rows[::-1]


def online_minutes(samples: Sequence[OnlineSample]) -> dict[tuple[dt.date, int], int]:
    """Minutes online per (UTC day, hour), each activity sample counting 3 minutes."""
    counts: Counter[tuple[dt.date, int]] = Counter()
    for sample in samples:
        at = sample.at.astimezone(dt.UTC)
        counts[at.date(), at.hour] += SEGMENT_MINUTES
    return {key: min(60, minutes) for key, minutes in counts.items()}


def _range_of(request: Request[Any, Any, Any]) -> tuple[str, dt.datetime, dt.datetime]:
    chosen = query.choice(request.query_params, "range", tuple(RANGES), DEFAULT_RANGE)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return chosen, end - RANGES[chosen][1], end


class ProfileController(Controller):
    """One person: fields with their sources, history, activity, follow events, raw data."""

    path = "/users"
    include_in_schema = False

    @get("/{username:str}")
    async def profile(
        self, request: Request[Any, Any, Any], db: Db, persons: Persons, username: Username
    ) -> Template:
        person = _found(await persons.get(username), username)
        # Follow state: any account's, or with account= (several accounts) that one's.
        choice = await page_account(
            request, db, query.text(request.query_params, "account"), required=False
        )
        if choice.several:
            person = await for_account(db, person, choice.account)
        chosen, start, end = _range_of(request)
        resolution = history_resolution(start, end)
        charts: dict[str, Markup] = {}
        for metric, title, invert in CHARTS:
            points = await metric_history(
                db, person.username, metric, start=start, end=end, resolution=resolution
            )
            charts[metric] = time_chart(
                points or [],
                start=start,
                end=end,
                label=f"{title} of {person.username}",
                invert=invert,
                max_gap=LINE_GAPS[resolution],
                attrs={
                    "data-metric": metric,
                    "data-resolution": resolution,
                    "data-from": start.isoformat(),
                    "data-to": end.isoformat(),
                },
            )
        first_day = max(start, end - dt.timedelta(days=HEATMAP_DAYS - 1)).date()
        days = [first_day + dt.timedelta(days=n) for n in range((end.date() - first_day).days + 1)]
        since = dt.datetime.combine(first_day, dt.time(), dt.UTC)
        activity = await person_activity(db, person.username, start=since, end=end)
        online = heatmap(
            days,
            online_minutes(activity.segments) if activity else {},
            label=f"Minutes online per UTC hour, {person.username}",
            totals={d.day: d.online_minutes for d in activity.daily} if activity else {},
        )
        events = await list_follow_events(
            db, choice.account, username=person.username, limit=EVENT_LIMIT
        )
        return page(
            request,
            "profile.html",
            accounts=choice.known,
            account=choice.account,
            events=with_durations(
                events, following=person.following, follower=person.follower, now=end
            ),
            event_limit=EVENT_LIMIT,
            p=person,
            muted=await is_muted_async(db, person.username),
            s=person.sources,
            fields=fields(person),
            ranges={key: label for key, (label, _) in RANGES.items()},
            range=chosen,
            resolution=resolution,
            charts=charts,
            chart_titles={metric: title for metric, title, _ in CHARTS},
            heatmap=online,
            snapshot_sources=get_args(SnapshotSource),
        )

    @get("/{username:str}/snapshots")
    async def snapshots(
        self, request: Request[Any, Any, Any], db: Db, persons: Persons, username: Username
    ) -> Template:
        """What one source (or both) said about the person, raw, newest first."""
        person = _found(await persons.get(username), username)
        source: SnapshotSource | None = query.optional_choice(
            request.query_params, "source", get_args(SnapshotSource)
        )
        found = await person_snapshots(db, person.username, source=source, limit=SNAPSHOT_LIMIT)
        items = [
            {
                "source": item.source,
                "observed_at": item.observed_at,
                "job_id": item.job_id,
                "raw": json.dumps(item.raw, indent=2, sort_keys=True, ensure_ascii=False),
            }
            for item in found or []
        ]
        return page(
            request,
            "snapshots.html",
            p=person,
            source=source,
            items=items,
            limit=SNAPSHOT_LIMIT,
            snapshot_sources=get_args(SnapshotSource),
        )

    @post("/{username:str}/watch", status_code=303)
    async def watch(
        self, request: Request[Any, Any, Any], db: Db, persons: Persons, username: Username
    ) -> Redirect:
        """Puts the person on the watch list or takes them off (form field ``watch``), then
        back to the profile (CSRF is checked before this runs, by :mod:`web.auth`)."""
        person = _found(await persons.get(username), username)
        watch = query.flag(dict(await request.form()), "watch")
        if watch is None:
            raise InvalidInput("watch", "expected true or false")
        await set_watch_async(db, [person.username], watch)
        persons.forget()  # the next read of this person shows the flag at once
        return Redirect(f"/users/{person.username}", status_code=303)

    @post("/{username:str}/mute", status_code=303)
    async def mute(
        self, request: Request[Any, Any, Any], db: Db, persons: Persons, username: Username
    ) -> Redirect:
        """Mutes or unmutes the person's going-live alerts (form field ``mute``), then back to
        the profile (CSRF is checked before this runs, by :mod:`web.auth`)."""
        person = _found(await persons.get(username), username)
        mute = query.flag(dict(await request.form()), "mute")
        if mute is None:
            raise InvalidInput("mute", "expected true or false")
        await set_mute_async(db, [person.username], mute)
        return Redirect(f"/users/{person.username}", status_code=303)
