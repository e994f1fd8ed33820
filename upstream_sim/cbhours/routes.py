"""HTTP face of the simulated CBHours API: ``GET /api.php?action=...`` (FORMATS.md §2).

The three documented actions are ``get_live``, ``get_activity`` and ``get_months``. Shapes
follow the doc examples in ``samples/doc_examples/cbhours_DOCEXAMPLE_*.json`` key for key.
Where the docs are silent (FORMATS.md §5.4) the simulator decides, strictly where a strict
answer can only make a client safer against the real site:

* **Trophy database.** ``get_live`` OMITS names outside the trophy set from ``data`` (the
  docs: "only models present in the trophy database will return live data"); if none of the
  names is in it, the answer is the Error Code:300 JSON with HTTP 200, as for ``get_activity``
  on an unknown model. ``get_months`` answers ``[]`` for an unknown model.
* **Names** are case-insensitive; ``data`` keys and ``model`` are the lowercase names.
  Blank entries in ``usernames`` are skipped and repeats collapse; more than 50 distinct
  names is refused.
* **Refusals** (missing or invalid parameter, more than 50 names, a range over 60 days, an
  unknown ``action``, a ``domain`` other than ``cbhours``) answer HTTP 400 with the API's
  error keys plus the parameter: ``{"status": "error", "message": ..., "parameter": ...}``.
  The range limit counts calendar days inclusive: ``start_date``..``end_date`` may span at
  most 60 days (2025-01-01..2025-03-01 is served, 2025-01-01..2025-03-02 refused).
* ``tzo`` is required (an integer from -720 to 840: minutes offset from GMT, -300 = UTC-5);
  segment timestamps and the days of ``activity`` and ``details`` are local to it. Only days
  with time on cam appear, oldest first. ``include_details`` takes ``true``/``false``
  (default false); without it the ``details`` key is absent.
* **Rate limit**: every request to ``/api.php`` (valid or not) passes one global limiter
  (``CbhoursState.rate_limit``); refused ones get HTTP 429, ``Retry-After`` and
  ``{"status": "error", "message": "Rate limit exceeded ..."}``. Requests answered by the fault
  middleware never reach the limiter, so injected faults neither count nor advance its clock.
"""

import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType

from upstream_sim.cbhours.data import SEGMENT_MINUTES, CbhoursState, LiveStatus, Segment
from upstream_sim.parameters import ParameterError
from upstream_sim.state import SimulatorState

CBHOURS_PATH = "/api.php"
MAX_LIVE_USERNAMES = 50
MAX_ACTIVITY_DAYS = 60
MIN_TZO, MAX_TZO = -720, 840
DOMAINS = ("cbhours",)
ERROR_CODE_300 = (
    "Error Code:300 To use this api please add a trophy/calendar to the models bio and then "
    "use the STUDIO search successfully one time."
)
RATE_LIMIT_MESSAGE = "Rate limit exceeded: this api is limited to one request per second."
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]+")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class _WireSegment(msgspec.Struct, frozen=True, kw_only=True):
    """A ``details`` entry in the doc example's key order, numbers as strings."""

    timestamp: str
    type: str
    rank: str
    followers: str
    viewers: str
    gender: str
    grank: str


class CbhoursController(Controller):
    """The one CBHours route. Needs a ``sim`` dependency (see ``app.create_app``)."""

    @get(CBHOURS_PATH)
    async def api(
        self, request: Request[Any, Any, Any], sim: NamedDependency[SimulatorState]
    ) -> Response[bytes]:
        """Dispatch on ``action`` after the rate limit; see the module docstring."""
        cbhours = sim.cbhours
        if not cbhours.rate_limit.admit():
            return _json(
                {"status": "error", "message": RATE_LIMIT_MESSAGE},
                status=429,
                headers={"Retry-After": str(cbhours.rate_limit.retry_after)},
            )
        started = time.perf_counter()
        params = {key: str(request.query_params.get(key)) for key in request.query_params}
        try:
            action = _required(params, "action")
            if action == "get_live":
                return _json(live_document(cbhours, params))
            if action == "get_activity":
                return _json(activity_document(cbhours, params, started))
            if action == "get_months":
                return _json(months_document(cbhours, params))
            raise ParameterError(
                "action", f"unknown action {action!r}; expected get_live, get_activity, get_months"
            )
        except ParameterError as exc:
            body = {"status": "error", "message": exc.detail, "parameter": exc.parameter}
            return _json(body, status=400)


def error_300() -> dict[str, str]:
    """The answer for a model outside the trophy database (sent with HTTP 200)."""
    return {"status": "error", "message": ERROR_CODE_300}


def live_document(cbhours: CbhoursState, params: dict[str, str]) -> dict[str, Any]:
    """Answer ``get_live``: trophy models only, in request order; Error Code:300 if none.

    Raises:
        ParameterError: ``usernames`` missing, empty or over 50 names.
    """
    raw = _required(params, "usernames")
    names = list(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    if not names:
        raise ParameterError("usernames", "no username given")
    if len(names) > MAX_LIVE_USERNAMES:
        raise ParameterError(
            "usernames", f"at most {MAX_LIVE_USERNAMES} usernames per request, got {len(names)}"
        )
    data: dict[str, LiveStatus] = {n: cbhours.live(n) for n in names if cbhours.in_trophy(n)}
    if not data:
        return error_300()
    return {"server_status": "up", "data": data}


def activity_document(
    cbhours: CbhoursState, params: dict[str, str], started: float
) -> dict[str, Any]:
    """Answer ``get_activity`` in the doc example's shape, days local to ``tzo``.

    Args:
        cbhours: The state to read.
        params: The query parameters.
        started: ``time.perf_counter()`` when handling began, for ``response_time``.

    Raises:
        ParameterError: A parameter is missing or invalid, or the range is too long.
    """
    _domain(params)
    username = _required(params, "username").strip().lower()
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if end < start:
        raise ParameterError("end_date", "end_date is before start_date")
    if (end - start).days + 1 > MAX_ACTIVITY_DAYS:
        raise ParameterError("end_date", f"the range may span at most {MAX_ACTIVITY_DAYS} days")
    tzo = _tzo(params)
    details_wanted = params.get("include_details", "false")
    if details_wanted not in ("true", "false"):
        raise ParameterError("include_details", "expected true or false")
    if not cbhours.in_trophy(username):
        return error_300()
    shift = timedelta(minutes=tzo)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC) - shift
    segments = cbhours.segments(username, since, since + timedelta(days=(end - start).days + 1))
    by_day: dict[date, list[_WireSegment]] = {}
    for segment in segments:
        local = segment.at + shift
        by_day.setdefault(local.date(), []).append(_wire(segment, local))
    total = len(segments) * SEGMENT_MINUTES
    document: dict[str, Any] = {
        "response_time": "",  # filled last, but the doc example has it first
        "status": True,
        "model": username,
        "serverStatus": True,
        "serverMessage": "",
        "activity": {
            day.isoformat(): daily_total(day, len(rows) * SEGMENT_MINUTES)
            for day, rows in by_day.items()
        },
        "total_time": {"hours": total // 60, "minutes": total % 60},
    }
    if details_wanted == "true":
        document["details"] = {day.isoformat(): rows for day, rows in by_day.items()}
    # PHP prints floats with 14 significant digits; a floor keeps it out of exponent form.
    elapsed = max(time.perf_counter() - started, 1e-4)
    document["response_time"] = f"{elapsed:.14g} seconds"
    return document


def months_document(cbhours: CbhoursState, params: dict[str, str]) -> list[str]:
    """Answer ``get_months``: ``YYYY-MM`` newest first; ``[]`` for a model outside the set.

    Raises:
        ParameterError: ``domain`` or ``username`` missing or invalid.
    """
    _domain(params)
    username = _required(params, "username")
    return cbhours.months(username) if cbhours.in_trophy(username) else []


def daily_total(day: date, minutes: int) -> str:
    """One ``activity`` value: ``2025-08-12 Tue - 01 Hours 24 Minutes``.

    The weekday comes from a fixed table, not ``strftime``, so the locale cannot change it.
    """
    hours, rest = divmod(minutes, 60)
    return f"{day.isoformat()} {_WEEKDAYS[day.weekday()]} - {hours:02d} Hours {rest:02d} Minutes"


def _wire(segment: Segment, local: datetime) -> _WireSegment:
    return _WireSegment(
        timestamp=local.strftime("%Y-%m-%dT%H:%M"),
        type=segment.type,
        rank=str(segment.rank),
        followers=str(segment.followers),
        viewers=str(segment.viewers),
        gender=segment.gender,
        grank=str(segment.grank),
    )


def _json(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise ParameterError(name, f"{name} is required")
    return value


def _domain(params: dict[str, str]) -> None:
    domain = _required(params, "domain")
    if domain not in DOMAINS:
        raise ParameterError("domain", f"only {', '.join(DOMAINS)} is simulated")


def _date(params: dict[str, str], name: str) -> date:
    raw = _required(params, name)
    try:
        if _DATE.fullmatch(raw) is None:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ParameterError(name, f"expected YYYY-MM-DD, got {raw!r}") from exc


def _tzo(params: dict[str, str]) -> int:
    raw = _required(params, "tzo")
    if _INTEGER.fullmatch(raw) is None or not MIN_TZO <= int(raw) <= MAX_TZO:
        raise ParameterError(
            "tzo", f"expected minutes from GMT, an integer {MIN_TZO} to {MAX_TZO}, got {raw!r}"
        )
    return int(raw)
