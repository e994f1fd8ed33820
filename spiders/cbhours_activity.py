"""The ``cbhours_activity`` spider: 3-minute activity and daily totals of trophy persons.

For each person with a CBHours trophy it asks ``action=get_activity`` with details for the last
60 days (FORMATS.md §2.3), counted in local days of ``cbhours.tzo``; segment times are local to
that offset and stored in UTC. Segments are upserted per person and time, so re-running writes
nothing new. On first sight of a person (nothing stored yet), ``action=get_months`` (§2.4) says
which months CBHours has, and those older than the 60 days are fetched in windows of at most 60
days. A malformed answer fails its request (naming the field) and writes nothing from it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
import scrapy
from scrapy.http import Response

from roomwatch.config import Config
from roomwatch.errors import DecodeError, UpstreamError
from roomwatch.text import clean_json
from spiders.cbhours_api import (
    CbhoursSpider,
    NoTrophy,
    decode_error,
    error_message,
    is_no_trophy,
    usernames_arg,
)
from storage.records import ActivitySegment, DailyActivity, WriteResult, gender_code
from storage.targets import cbhours_activity_targets, without_cbhours_activity
from storage.writers import write_cbhours_activity

if TYPE_CHECKING:
    import psycopg

WINDOW_DAYS = 60  # the API's longest range, calendar days inclusive
_Numeric = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]+$")]
_DAILY = re.compile(r"^(\d{4}-\d{2}-\d{2}) [A-Za-z]{3} - (\d+) Hours (\d+) Minutes$")


class _Segment(msgspec.Struct):
    """One 3-minute sample: numbers come as numeric strings (FORMATS.md §2.3)."""

    timestamp: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")]
    type: str
    rank: _Numeric
    grank: _Numeric
    followers: _Numeric
    viewers: _Numeric
    gender: str | None = None


class _Answer(msgspec.Struct):
    """A ``get_activity`` answer; ``[]`` stands for an empty map (PHP's ``json_encode``)."""

    status: bool | str
    message: str = ""
    activity: dict[str, msgspec.Raw] | list[msgspec.Raw] = msgspec.field(default_factory=dict)
    details: dict[str, msgspec.Raw] | list[msgspec.Raw] = msgspec.field(default_factory=dict)


_answer = msgspec.json.Decoder(_Answer)
_segments = msgspec.json.Decoder(list[_Segment])
_text = msgspec.json.Decoder(str)
_months = msgspec.json.Decoder(list[Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}$")]])


class ActivityAnswer(msgspec.Struct, frozen=True):
    """One decoded ``get_activity`` answer (times in UTC; days local to the request's tzo)."""

    segments: list[ActivitySegment]
    daily: list[DailyActivity]
    no_trophy: bool = False


def parse_daily_total(value: str) -> tuple[dt.date, int]:
    """``2025-08-12 Tue - 01 Hours 24 Minutes`` as (day, minutes online).

    Raises:
        ValueError: the text does not have that shape.
    """
    match = _DAILY.fullmatch(value)
    if match is None or int(match.group(3)) >= 60:
        raise ValueError(f"expected 'YYYY-MM-DD Day - HH Hours MM Minutes', got {value!r}")
    return dt.date.fromisoformat(match.group(1)), int(match.group(2)) * 60 + int(match.group(3))


def local_to_utc(timestamp: str, tzo: int) -> dt.datetime:
    """A segment's ``YYYY-MM-DDTHH:MM``, local to ``tzo`` minutes from GMT, as UTC."""
    local = dt.datetime.fromisoformat(timestamp).replace(tzinfo=dt.UTC)
    return local - dt.timedelta(minutes=tzo)


def decode_activity(body: bytes, username: str, tzo: int) -> ActivityAnswer:
    """Decodes one ``get_activity`` answer strictly.

    Raises:
        DecodeError: naming the day and field that do not match the documented format.
        UpstreamError: an error answer other than Error Code:300.
    """
    try:
        answer = _answer.decode(clean_json(body))  # no NUL or lone surrogate reaches a row
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise decode_error(exc) from None
    username = username.lower()
    if answer.status is not True:
        if is_no_trophy(answer.message):
            return ActivityAnswer(segments=[], daily=[], no_trophy=True)
        raise UpstreamError(f"error answer: status {answer.status!r} {answer.message}".strip())
    daily = [
        DailyActivity(username=username, day=day, online_minutes=minutes, tzo=tzo)
        for day, minutes in _daily_totals(_entries(answer.activity, "activity"))
    ]
    segments = []
    for day, raw in _entries(answer.details, "details"):
        try:
            wires = _segments.decode(raw)
        except msgspec.ValidationError as exc:
            raise decode_error(exc, f"details.{day}") from None
        for index, wire in enumerate(wires):
            try:
                # The pattern lets through impossible times (2025-02-30T10:00, 24:00): a
                # ValueError here escaped as a spider error and the job still succeeded.
                segment_at = local_to_utc(wire.timestamp, tzo)
            except (ValueError, OverflowError):
                raise DecodeError(
                    f"details.{day}[{index}].timestamp: expected a real local time "
                    f"YYYY-MM-DDTHH:MM, got {wire.timestamp!r}"
                ) from None
            segments.append(
                ActivitySegment(
                    username=username,
                    segment_at=segment_at,
                    type=wire.type,
                    rank=int(wire.rank),
                    grank=int(wire.grank),
                    followers=int(wire.followers),
                    viewers=int(wire.viewers),
                    gender=gender_code(wire.gender) if wire.gender else None,
                )
            )
    return ActivityAnswer(segments=segments, daily=daily)


def _entries(
    value: dict[str, msgspec.Raw] | list[msgspec.Raw], field: str
) -> list[tuple[str, msgspec.Raw]]:
    if isinstance(value, list):
        if value:
            raise DecodeError(f"{field}: expected `object`, got `array`")
        return []
    return list(value.items())


def _daily_totals(entries: Iterable[tuple[str, msgspec.Raw]]) -> Iterator[tuple[dt.date, int]]:
    for key, raw in entries:
        try:
            _, minutes = parse_daily_total(_text.decode(raw))
            day = dt.date.fromisoformat(key)
        except msgspec.ValidationError as exc:
            raise decode_error(exc, f"activity.{key}") from None
        except ValueError as exc:
            raise DecodeError(f"activity.{key}: {exc}") from None
        yield day, minutes


def decode_months(body: bytes) -> list[str]:
    """Decodes a ``get_months`` answer: ``YYYY-MM`` strings; an error answer means none.

    Raises:
        DecodeError: naming the element that is not a ``YYYY-MM`` string of a real month.
    """
    body = clean_json(body)
    if error_message(body) is not None:
        return []
    try:
        months = _months.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise decode_error(exc) from None
    for index, month in enumerate(months):
        try:
            dt.date.fromisoformat(f"{month}-01")
        except ValueError:
            raise DecodeError(f"[{index}]: expected a real month YYYY-MM, got {month!r}") from None
    return months


def backfill_windows(months: Iterable[str], before: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The ranges (first, last day inclusive, at most 60 days each) covering ``months`` before
    ``before`` (the first day already fetched), skipping months CBHours does not list.

    Each month is widened by one day on either side: ``get_months`` takes no ``tzo``, so a
    month's first or last hours may fall on a neighbouring local day. Months from ``before``
    on add nothing and are skipped first: a month such as ``9999-12`` has no following month
    to compute (it ended the crawl with an OverflowError).
    """
    days: set[dt.date] = set()
    for month in months:
        first = dt.date.fromisoformat(f"{month}-01")
        if first >= before:
            continue
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        day = first - dt.timedelta(days=1) if first > dt.date.min else first
        while day <= following:
            if day < before:
                days.add(day)
            day += dt.timedelta(days=1)
    windows: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if windows:
            start, end = windows[-1]
            if day == end + dt.timedelta(days=1) and (day - start).days < WINDOW_DAYS:
                windows[-1] = (start, day)
                continue
        windows.append((day, day))
    return windows


class CbhoursActivityPage(msgspec.Struct, frozen=True):
    """One answer's segments and daily totals, upserted in one transaction."""

    kind: ClassVar[str] = "cbhours_activity"
    segments: list[ActivitySegment]
    daily: list[DailyActivity]
    observed_at: dt.datetime

    def __repr__(self) -> str:
        # Scrapy logs every item; a 60-day answer holds up to 28,800 segments.
        names = sorted({s.username for s in self.segments} | {d.username for d in self.daily})
        return (
            f"CbhoursActivityPage({', '.join(names)}: {len(self.segments)} segments, "
            f"{len(self.daily)} days)"
        )

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> WriteResult:
        return write_cbhours_activity(
            conn, self.segments, self.daily, observed_at=self.observed_at, job_id=job_id
        )


class CbhoursActivitySpider(CbhoursSpider):
    """The last 60 days of every trophy person, plus a backfill on first sight.

    Arguments (``-a``): ``usernames=a,b`` fetches exactly these persons; ``backfill=a,b`` forces
    the months backfill for these (for example after a backfill was interrupted).
    """

    name = "cbhours_activity"

    def __init__(
        self,
        *args: Any,
        targets: list[str] | None = None,
        backfill: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.targets: list[str] = targets or []
        self.backfill: set[str] = set(backfill or [])
        self.tzo = 0
        self.recent_start = dt.date.min

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The persons (``usernames``, else trophy targets) and who needs a backfill: those
        with nothing stored yet, and any named in ``backfill``."""
        names = usernames_arg(args, "usernames")
        if names is None:
            names = cbhours_activity_targets(conn, config.cbhours.targets)
        forced = usernames_arg(args, "backfill") or []
        names += [name for name in forced if name not in names]
        backfill = without_cbhours_activity(conn, names) | set(forced)
        return {"targets": names, "backfill": sorted(backfill)}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.tzo = self.config.cbhours.tzo
        today = (self.observed_at + dt.timedelta(minutes=self.tzo)).date()
        self.recent_start = today - dt.timedelta(days=WINDOW_DAYS - 1)
        if not self.targets:
            self.logger.info("no CBHours activity targets: nobody of interest has a trophy")
        for username in self.targets:
            yield self._activity(username, self.recent_start, today)
            if username in self.backfill:
                yield self.api_request(
                    [("action", "get_months"), ("domain", "cbhours"), ("username", username)],
                    self.parse_months,
                    f"get_months {username}",
                    username=username,
                )

    def _activity(self, username: str, first: dt.date, last: dt.date) -> scrapy.Request:
        return self.api_request(
            [
                ("action", "get_activity"),
                ("domain", "cbhours"),
                ("username", username),
                ("start_date", first.isoformat()),
                ("end_date", last.isoformat()),
                ("tzo", self.tzo),
                ("include_details", "true"),
            ],
            self.parse_activity,
            f"get_activity {username} {first}..{last}",
            username=username,
        )

    def parse_activity(self, response: Response, username: str) -> Iterator[Any]:
        try:
            answer = decode_activity(response.body, username, self.tzo)
        except UpstreamError as exc:
            self.fail(f"{response.meta['what']}: {exc}")
            return
        self.crawler.stats.inc_value("roomwatch/pages")
        if answer.no_trophy:
            yield NoTrophy(usernames=[username], checked_at=self.observed_at)
        elif answer.segments or answer.daily:
            yield CbhoursActivityPage(answer.segments, answer.daily, self.observed_at)

    def parse_months(self, response: Response, username: str) -> Iterator[scrapy.Request]:
        try:
            months = decode_months(response.body)
        except UpstreamError as exc:
            self.fail(f"{response.meta['what']}: {exc}")
            return
        self.crawler.stats.inc_value("roomwatch/pages")
        windows = backfill_windows(months, self.recent_start)
        self.crawler.stats.inc_value("roomwatch/backfill_windows", len(windows))
        for first, last in windows:
            yield self._activity(username, first, last)
