"""Response bodies of the person and follow-event routes (the envelopes around storage rows).

The rows themselves (``PersonSummary``, ``PersonDetail``, ``HistoryPoint``, ...) are the frozen
Structs the storage reads return; they are served as they are, so the OpenAPI schema describes
exactly what the queries produce.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from storage.person_list import PersonSummary
from storage.person_queries import FollowEvent
from storage.person_series import (
    DailyOnline,
    HistoryPoint,
    Metric,
    OnlineSample,
    Resolution,
    Snapshot,
)


class PersonPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of persons; pass ``next_cursor`` back as ``cursor`` for the next (null: done)."""

    items: list[PersonSummary]
    next_cursor: str | None


class FollowEventPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of follow events, newest first; ``next_cursor`` as for :class:`PersonPage`."""

    items: list[FollowEvent]
    next_cursor: str | None


class History(msgspec.Struct, frozen=True, kw_only=True):
    """A metric of one person over ``[from, to)``, every source's points, oldest first."""

    username: str
    metric: Metric
    resolution: Resolution
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    points: list[HistoryPoint]


class Activity(msgspec.Struct, frozen=True, kw_only=True):
    """Daily online minutes and the 3-minute online samples of one person over ``[from, to)``."""

    username: str
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    daily: list[DailyOnline]
    segments: list[OnlineSample]


class Snapshots(msgspec.Struct, frozen=True, kw_only=True):
    """What the sources said about one person, raw, newest first."""

    username: str
    items: list[Snapshot]
