"""The CBHours API (FORMATS.md §2): its answers decoded into records, strictly.

``get_live`` (§2.2): live stats of up to 50 models per request; ``get_activity`` (§2.3):
3-minute segments and daily totals; ``get_months`` (§2.4): the months CBHours holds for a
model. Any action may answer ``{"status": "error", "message": ...}``; ``Error Code:300`` says
the model is not in the trophy database. A body that does not match fails with a
:class:`~roomwatch.errors.DecodeError` naming the field, as job errors read. The spiders are
``spiders/cbhours_live.py`` and ``spiders/cbhours_activity.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Annotated

import msgspec

from roomwatch.errors import DecodeError, UpstreamError
from roomwatch.text import clean_json
from storage.records import ActivitySegment, CbhoursLive, DailyActivity, gender_code

WINDOW_DAYS = 60  # the API's longest range, calendar days inclusive


ERROR_CODE_300 = "Error Code:300"
"""How CBHours says a model is not in its trophy database (both known clients test this)."""


class _ErrorAnswer(msgspec.Struct):
    """``{"status": "error", "message": "..."}``: any action's refusal."""

    status: str
    message: str = ""


_error_answer = msgspec.json.Decoder(_ErrorAnswer)


def error_message(body: bytes) -> str | None:
    """The message of an error answer (``status: "error"``), None for any other body."""
    try:
        answer = _error_answer.decode(clean_json(body))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return answer.message if answer.status == "error" else None


def is_no_trophy(message: str | None) -> bool:
    """Whether an error message is the Error Code:300 "not in the trophy database" answer."""
    return message is not None and ERROR_CODE_300 in message


def where(exc: Exception, prefix: str = "") -> str:
    """msgspec's ``Expected `int`, got `str` - at `$.rank``` as ``data.a.rank: expected `int`,
    got `str``` (with prefix ``data.a``): the field first, as job errors read.

    msgspec does not name object keys in its paths (``$[...]``), so callers decode keyed
    objects entry by entry and pass the key in ``prefix``.
    """
    message, sep, path = str(exc).partition(" - at `$")
    path = path.rstrip("`") if sep else ""
    if prefix and path and not path.startswith("["):
        path = "." + path.lstrip(".")
    field = f"{prefix}{path}".lstrip(".") or "$"
    return f"{field}: {message[0].lower()}{message[1:]}"


def decode_error(
    exc: msgspec.ValidationError | msgspec.DecodeError, prefix: str = ""
) -> DecodeError:
    """A decode failure as the one-line error that fails the request, naming the field."""
    if isinstance(exc, msgspec.ValidationError):
        return DecodeError(where(exc, prefix))
    return DecodeError(f"{prefix or 'body'}: not JSON ({exc})")


# get_live (§2.2)


class _Online(msgspec.Struct, tag_field="room_status", tag="Online"):
    """A model on cam; unknown fields are allowed (the raw row is kept)."""

    rank: int
    grank: int
    viewers: int
    followers: int
    current_show: str
    room_subject: str
    tags: list[str]
    gender: str | None = None
    is_new: bool | None = None


class _Offline(msgspec.Struct, tag_field="room_status", tag="Offline"):
    """A model off cam: the status is all CBHours says."""


class _LiveAnswer(msgspec.Struct):
    """Either ``{"server_status", "data"}`` or the error answer ``{"status", "message"}``.

    ``data`` may be ``[]``: PHP's ``json_encode`` writes an empty map as an empty array.
    """

    server_status: str | None = None
    data: dict[str, msgspec.Raw] | list[msgspec.Raw] | None = None
    status: str | bool | None = None
    message: str | None = None


_live_answer = msgspec.json.Decoder(_LiveAnswer)
_row = msgspec.json.Decoder(_Online | _Offline)


class LiveAnswer(msgspec.Struct, frozen=True):
    """One decoded ``get_live`` answer.

    Attributes:
        rows: the models CBHours answered for (lowercase usernames).
        no_trophy: the answer was Error Code:300 (none of the names is in the trophy database).
    """

    rows: list[CbhoursLive]
    no_trophy: bool = False


def decode_live(body: bytes) -> LiveAnswer:
    """Decodes one ``get_live`` answer strictly.

    Raises:
        DecodeError: naming the model and field that do not match the documented format.
        UpstreamError: an error answer other than Error Code:300.
    """
    try:
        answer = _live_answer.decode(clean_json(body))  # no NUL or lone surrogate reaches a row
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise decode_error(exc) from None
    if answer.status == "error":
        if is_no_trophy(answer.message):
            return LiveAnswer(rows=[], no_trophy=True)
        raise UpstreamError(f"error answer: {answer.message or '(no message)'}")
    if answer.data is None:
        raise DecodeError("data: object missing required field")
    if isinstance(answer.data, list):
        if answer.data:
            raise DecodeError("data: expected `object`, got `array`")
        return LiveAnswer(rows=[])
    rows = []
    for name, raw in answer.data.items():
        try:
            wire = _row.decode(raw)
        except msgspec.ValidationError as exc:
            raise decode_error(exc, f"data.{name}") from None
        rows.append(_live_record(name.lower(), wire, bytes(raw)))
    return LiveAnswer(rows=rows)


def _live_record(username: str, wire: _Online | _Offline, raw: bytes) -> CbhoursLive:
    if isinstance(wire, _Offline):
        return CbhoursLive(username=username, room_status="Offline", raw=raw)
    return CbhoursLive(
        username=username,
        room_status="Online",
        gender=gender_code(wire.gender) if wire.gender else None,
        rank=wire.rank,
        grank=wire.grank,
        viewers=wire.viewers,
        followers=wire.followers,
        current_show=wire.current_show,
        room_subject=wire.room_subject,
        tags=[tag.lower() for tag in wire.tags],
        is_new=wire.is_new,
        raw=raw,
    )


# get_activity and get_months (§2.3, §2.4)


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


class _ActivityAnswer(msgspec.Struct):
    """A ``get_activity`` answer; ``[]`` stands for an empty map (PHP's ``json_encode``)."""

    status: bool | str
    message: str = ""
    activity: dict[str, msgspec.Raw] | list[msgspec.Raw] = msgspec.field(default_factory=dict)
    details: dict[str, msgspec.Raw] | list[msgspec.Raw] = msgspec.field(default_factory=dict)


_activity_answer = msgspec.json.Decoder(_ActivityAnswer)
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
        answer = _activity_answer.decode(clean_json(body))  # no NUL or lone surrogate reaches a row
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
