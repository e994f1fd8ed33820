"""Async reads of one person's history for the control API: metric series, activity, raw snapshots.

Each function is one query that starts from ``persons`` by username (unique index) and aggregates
the person's rows into JSON inside PostgreSQL; a missing person is ``None``, a person without data
in the range is an empty list. The JSON is decoded by typed msgspec decoders built once here.

Resolution of :func:`metric_history`: ``raw`` reads every observation (the per-poll snapshot
tables, kept ``database.snapshot_retention_days``); ``hour`` reads the hourly rollup
``affiliate_hourly`` (kept for years) and buckets the CBHours rows by hour. Per hour, viewers is
the peak, followers the last value, rank and grank the best (lowest) value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, get_args

import msgspec
from psycopg import AsyncConnection, sql

Metric = Literal["followers", "rank", "grank", "viewers"]
Resolution = Literal["raw", "hour"]
SnapshotSource = Literal["affiliate", "cbhours"]


class HistoryPoint(msgspec.Struct, frozen=True):
    """One value of a metric at a time, as one source reported it (or its hourly summary)."""

    at: dt.datetime
    value: int
    source: str


class DailyOnline(msgspec.Struct, frozen=True, kw_only=True):
    """Online minutes of one day as CBHours counts them (its local day for ``tzo``)."""

    day: dt.date
    online_minutes: int
    tzo: int
    observed_at: dt.datetime


class OnlineSample(msgspec.Struct, frozen=True, kw_only=True):
    """One 3-minute CBHours activity sample (UTC) taken while the person was online."""

    at: dt.datetime
    type: str
    rank: int | None
    grank: int | None
    followers: int | None
    viewers: int | None


class PersonActivity(msgspec.Struct, frozen=True, kw_only=True):
    """Daily online time and the samples it is made of, oldest first."""

    daily: list[DailyOnline]
    segments: list[OnlineSample]


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What one source said about the person in one poll, exactly as received."""

    source: str
    observed_at: dt.datetime
    job_id: int | None
    raw: dict[str, Any]


_POINTS = msgspec.json.Decoder(list[HistoryPoint])
_DAILY = msgspec.json.Decoder(list[DailyOnline])
_SAMPLES = msgspec.json.Decoder(list[OnlineSample])
_SNAPSHOTS = msgspec.json.Decoder(list[Snapshot])

# Metric -> column of the Affiliate snapshot / hourly rollup (None: the feed has no such value).
_AFFILIATE_RAW = {"followers": "num_followers", "viewers": "num_users"}
_AFFILIATE_HOURLY = {"followers": "followers_last", "viewers": "viewers_max"}
# How CBHours values are summarised per hour (see the module docstring).
_CBHOURS_HOURLY = {
    "followers": "(array_agg(value ORDER BY at DESC))[1]",
    "viewers": "max(value)",
    "rank": "min(value)",
    "grank": "min(value)",
}

_IN_RANGE = "person_id = p.person_id AND {t} >= %(start)s AND {t} < %(end)s AND {v} IS NOT NULL"


def _cbhours_rows(metric: Metric) -> sql.Composed:
    """Every CBHours observation of ``metric``: the live stats and the activity samples."""
    column = sql.Identifier(metric)
    return sql.SQL(
        "SELECT observed_at AS at, {c} AS value FROM cbhours_live_stats WHERE {live} "
        "UNION ALL SELECT segment_at, {c} FROM cbhours_activity WHERE {seg}"
    ).format(
        c=column,
        live=sql.SQL(_IN_RANGE).format(t=sql.Identifier("observed_at"), v=column),
        seg=sql.SQL(_IN_RANGE).format(t=sql.Identifier("segment_at"), v=column),
    )


def _series(metric: Metric, resolution: Resolution) -> sql.Composed:
    parts: list[sql.Composable] = []
    if resolution == "raw":
        if metric in _AFFILIATE_RAW:
            column = sql.Identifier(_AFFILIATE_RAW[metric])
            parts.append(
                sql.SQL(
                    "SELECT observed_at AS at, {c} AS value, 'affiliate' AS source "
                    "FROM affiliate_api_snapshots WHERE {where}"
                ).format(
                    c=column,
                    where=sql.SQL(_IN_RANGE).format(t=sql.Identifier("observed_at"), v=column),
                )
            )
        parts.append(
            sql.SQL("SELECT at, value, 'cbhours' FROM ({rows}) c").format(
                rows=_cbhours_rows(metric)
            )
        )
    else:
        if metric in _AFFILIATE_HOURLY:
            parts.append(
                sql.SQL(
                    "SELECT hour AS at, {c} AS value, 'affiliate' AS source FROM affiliate_hourly "
                    "WHERE person_id = p.person_id "
                    "AND hour >= date_trunc('hour', %(start)s::timestamptz) AND hour < %(end)s"
                ).format(c=sql.Identifier(_AFFILIATE_HOURLY[metric]))
            )
        parts.append(
            sql.SQL(
                "SELECT date_trunc('hour', at), {agg}, 'cbhours' FROM ({rows}) c "
                "GROUP BY date_trunc('hour', at)"
            ).format(agg=sql.SQL(_CBHOURS_HOURLY[metric]), rows=_cbhours_rows(metric))
        )
    return sql.SQL(" UNION ALL ").join(parts)


def history_query(metric: Metric, resolution: Resolution) -> sql.Composed:
    """One row (the person's points as a JSON array) or none (no such person)."""
    return sql.SQL(
        "SELECT (SELECT coalesce(json_agg(json_build_object("
        "'at', s.at, 'value', s.value, 'source', s.source) ORDER BY s.at, s.source), '[]') "
        "FROM ({series}) s(at, value, source))::text "
        "FROM persons p WHERE p.username = lower(%(username)s)"
    ).format(series=_series(metric, resolution))


# Built once; each is a fixed text, prepared on first use per connection (see the detail read).
_HISTORY = {
    (metric, resolution): history_query(metric, resolution)
    for metric in get_args(Metric)
    for resolution in get_args(Resolution)
}


async def metric_history(
    conn: AsyncConnection[Any],
    username: str,
    metric: Metric,
    *,
    start: dt.datetime,
    end: dt.datetime,
    resolution: Resolution,
) -> list[HistoryPoint] | None:
    """Points of ``metric`` in ``[start, end)`` from every source, oldest first."""
    params = {"username": username, "start": start, "end": end}
    query = _HISTORY[metric, resolution]
    row = await (await conn.execute(query, params, prepare=True)).fetchone()
    return None if row is None else _POINTS.decode(row[0])


ACTIVITY = """
SELECT
    (SELECT coalesce(json_agg(json_build_object('day', day, 'online_minutes', online_minutes,
                                                'tzo', tzo, 'observed_at', observed_at)
                              ORDER BY day), '[]')
     FROM cbhours_daily_activity
     WHERE person_id = p.person_id AND day >= (%(start)s AT TIME ZONE 'UTC')::date
       AND day <= (%(end)s AT TIME ZONE 'UTC')::date)::text,
    (SELECT coalesce(json_agg(json_build_object('at', segment_at, 'type', type, 'rank', rank,
                                                'grank', grank, 'followers', followers,
                                                'viewers', viewers)
                              ORDER BY segment_at), '[]')
     FROM cbhours_activity
     WHERE person_id = p.person_id AND segment_at >= %(start)s AND segment_at < %(end)s)::text
FROM persons p WHERE p.username = lower(%(username)s)
"""


async def person_activity(
    conn: AsyncConnection[Any], username: str, *, start: dt.datetime, end: dt.datetime
) -> PersonActivity | None:
    """Daily online minutes of the days ``start``..``end`` touch (UTC dates) and the samples."""
    params = {"username": username, "start": start, "end": end}
    row = await (await conn.execute(ACTIVITY, params, prepare=True)).fetchone()
    if row is None:
        return None
    return PersonActivity(daily=_DAILY.decode(row[0]), segments=_SAMPLES.decode(row[1]))


# Each branch takes its own newest rows first (index order per partition), then the union is cut.
SNAPSHOTS = """
SELECT (SELECT coalesce(json_agg(s ORDER BY s.observed_at DESC, s.source), '[]') FROM (
    (SELECT 'affiliate' AS source, observed_at, job_id, raw FROM affiliate_api_snapshots
     WHERE person_id = p.person_id AND %(affiliate)s ORDER BY observed_at DESC LIMIT %(limit)s)
    UNION ALL
    (SELECT 'cbhours', observed_at, job_id, raw FROM cbhours_live_stats
     WHERE person_id = p.person_id AND %(cbhours)s ORDER BY observed_at DESC LIMIT %(limit)s)
    ORDER BY observed_at DESC LIMIT %(limit)s
) s)::text
FROM persons p WHERE p.username = lower(%(username)s)
"""


async def person_snapshots(
    conn: AsyncConnection[Any], username: str, *, source: SnapshotSource | None, limit: int
) -> list[Snapshot] | None:
    """The newest raw observations of the person, from one source or both, newest first."""
    params = {
        "username": username,
        "affiliate": source in (None, "affiliate"),
        "cbhours": source in (None, "cbhours"),
        "limit": limit,
    }
    row = await (await conn.execute(SNAPSHOTS, params, prepare=True)).fetchone()
    return None if row is None else _SNAPSHOTS.decode(row[0])
