"""Async reads of the merged person state for the control API: one person, follow events.

Every function takes an open ``psycopg.AsyncConnection`` and runs one query. Rows come back as
frozen msgspec Structs whose fields are exactly the selected columns, so a column renamed in the
view fails loudly in tests instead of silently returning nothing. The person list is in
:mod:`storage.person_list`; the time series of one person (history, activity, raw snapshots) in
:mod:`storage.person_series`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NamedTuple

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import class_row, dict_row

from storage import merge_rules
from storage.follow_durations import FOLLOW_DURATIONS, duration_column, relation_column

FollowEventKind = Literal["followed", "unfollowed", "new_follower", "lost_follower"]


class FieldSource(msgspec.Struct, frozen=True):
    """Where a merged value came from; ``stale`` is None for groups without staleness."""

    source: str | None
    observed_at: dt.datetime | None
    stale: bool | None


class PersonSources(msgspec.Struct, frozen=True, kw_only=True):
    """Provenance of every merged field of :class:`PersonDetail`."""

    display_name: FieldSource
    age: FieldSource
    birthday: FieldSource
    gender: FieldSource
    location: FieldSource
    country: FieldSource
    spoken_languages: FieldSource
    online: FieldSource
    current_show: FieldSource
    viewers: FieldSource
    subject: FieldSource
    followers: FieldSource
    tags: FieldSource
    image_url: FieldSource
    rank: FieldSource
    grank: FieldSource


class PersonDetail(msgspec.Struct, frozen=True, kw_only=True):
    """The merged current state of one person, each merged field with its provenance, and the
    follow durations (:mod:`storage.follow_durations`)."""

    person_id: int
    username: str
    display_name: str | None
    age: int | None
    birthday: dt.date | None
    gender: str | None
    location: str | None
    country: str | None
    spoken_languages: str | None
    online: bool | None
    current_show: str | None
    viewers: int | None
    subject: str | None
    followers: int | None
    tags: list[str] | None
    image_url: str | None
    rank: int | None
    grank: int | None
    first_seen_at: dt.datetime
    last_seen_online_at: dt.datetime | None
    following: bool | None
    follower: bool | None
    following_checked_at: dt.datetime | None
    follower_checked_at: dt.datetime | None
    has_cbhours_trophy: bool | None
    cbhours_trophy_checked_at: dt.datetime | None
    watch: bool
    image_id: int | None
    following_since: dt.datetime | None
    unfollowed_at: dt.datetime | None
    follower_since: dt.datetime | None
    lost_follower_at: dt.datetime | None
    sources: PersonSources


class FollowEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A change of follow state, when it was seen and by which job."""

    event_id: int
    username: str
    kind: str
    occurred_at: dt.datetime
    source: str
    job_id: int | None


# Merged field -> (column prefix of its provenance in the view, has a <prefix>_stale column).
_PROVENANCE: dict[str, tuple[str, bool]] = {
    field: merge_rules.provenance(field) for group in merge_rules.GROUPS for field in group.fields
}
_DETAIL_FIELDS = tuple(f for f in PersonDetail.__struct_fields__ if f != "sources")
_VIEW_FIELDS = tuple(f for f in _DETAIL_FIELDS if f not in FOLLOW_DURATIONS)
_PROVENANCE_COLUMNS = tuple(
    dict.fromkeys(
        column
        for prefix, stale in _PROVENANCE.values()
        for column in (f"{prefix}_source", f"{prefix}_observed_at", *([f"{prefix}_stale"] * stale))
    )
)
# Seconds until the first of the person's observations that are recent now leaves the window
# (then a winner or a staleness flag may change); NULL when none is recent.
_VALID_FOR = sql.SQL(
    "(SELECT extract(epoch FROM min(o.at) - w.since) "
    "FROM person_source_latest l CROSS JOIN LATERAL (VALUES {stamps}) o (at) "
    "WHERE l.person_id = v.person_id AND o.at >= w.since) AS valid_for"
).format(
    stamps=sql.SQL(", ").join(
        sql.SQL("({})").format(sql.Identifier("l", g.stamp)) for g in merge_rules.recent_groups()
    )
)
# Composed once into bytes: composing 56 identifiers again on every request cost ~15% of the
# API process's time under load (the statement itself is prepared server-side).
PERSON_DETAIL = (
    sql.SQL(
        "SELECT {columns}, {durations}, {valid_for} FROM v_person_current_state v "
        # The window's start, computed once (OFFSET 0 keeps it from being inlined per use).
        "CROSS JOIN (SELECT roomwatch_recent_since() AS since OFFSET 0) w "
        "WHERE username = lower(%(username)s)"
    )
    .format(
        columns=sql.SQL(", ").join(
            sql.Identifier("v", c) for c in _VIEW_FIELDS + _PROVENANCE_COLUMNS
        ),
        durations=sql.SQL(", ").join(duration_column(f, "v") for f in FOLLOW_DURATIONS),
        valid_for=_VALID_FOR,
    )
    .as_bytes()
)


class PersonRead(NamedTuple):
    """One person as merged now, and for how long time alone cannot change that merge."""

    person: PersonDetail
    valid_for: float | None  # seconds; None: only a new observation can change it


async def get_person(conn: AsyncConnection[Any], username: str) -> PersonRead | None:
    """The merged state of one person (by username, any case) with per-field provenance."""
    cur = conn.cursor(row_factory=dict_row)
    # Planning the merge view costs milliseconds, running it a fraction of one: prepare at once
    # rather than after psycopg's default five executions per connection.
    row = await (await cur.execute(PERSON_DETAIL, {"username": username}, prepare=True)).fetchone()
    if row is None:
        return None
    person = PersonDetail(**{f: row[f] for f in _DETAIL_FIELDS}, sources=_sources(row))
    valid_for = row["valid_for"]
    return PersonRead(person, float(valid_for) if valid_for is not None else None)


# One person's follow state as one account knows it (migration 0020), for an install with
# several accounts, where the merged row's own columns say what any account knows.
_ACCOUNT_FIELDS = ("following", "follower", "following_checked_at", "follower_checked_at")
ACCOUNT_STATE = (
    sql.SQL("SELECT {columns}, {durations} FROM (SELECT %(person_id)s::bigint AS person_id) x")
    .format(
        columns=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(relation_column(f, "x", True), sql.Identifier(f))
            for f in _ACCOUNT_FIELDS
        ),
        durations=sql.SQL(", ").join(duration_column(f, "x", True) for f in FOLLOW_DURATIONS),
    )
    .as_bytes()
)


async def for_account(
    conn: AsyncConnection[Any], person: PersonDetail, account: str | None
) -> PersonDetail:
    """``person`` with the follow state (and durations) of ``account`` in place of any
    account's."""
    cur = conn.cursor(row_factory=dict_row)
    params = {"person_id": person.person_id, "account": account}
    row = await (await cur.execute(ACCOUNT_STATE, params)).fetchone()
    assert row is not None  # one row always
    return msgspec.structs.replace(person, **row)


SOURCES_OF = (
    sql.SQL("SELECT person_id, {columns} FROM v_person_current_state WHERE person_id = ANY(%s)")
    .format(columns=sql.SQL(", ").join(map(sql.Identifier, _PROVENANCE_COLUMNS)))
    .as_bytes()
)


def _sources(row: dict[str, Any]) -> PersonSources:
    return PersonSources(
        **{
            field: FieldSource(
                row[f"{prefix}_source"],
                row[f"{prefix}_observed_at"],
                row[f"{prefix}_stale"] if stale else None,
            )
            for field, (prefix, stale) in _PROVENANCE.items()
        }
    )


async def sources_of(conn: AsyncConnection[Any], person_ids: list[int]) -> dict[int, PersonSources]:
    """Per-field provenance of several persons at once (the rows of one list page), by id."""
    if not person_ids:
        return {}
    cur = conn.cursor(row_factory=dict_row)
    rows = await (await cur.execute(SOURCES_OF, [person_ids], prepare=True)).fetchall()
    return {row["person_id"]: _sources(row) for row in rows}


def follow_events_query(
    *,
    account: str | None,
    kind: FollowEventKind | None,
    since: dt.datetime | None,
    limit: int | None,
    after: tuple[dt.datetime, int] | None,
    username: str | None = None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The follow-event query and its parameters, newest first; ``limit=None``: every row
    (``LIMIT NULL`` is ``LIMIT ALL``, what the export reads through a server-side cursor);
    ``username``: one person's events only (any case). Only ``account``'s events (None: any
    account's)."""
    where: list[sql.Composable] = []
    if account is not None:
        where.append(sql.SQL("e.account = %(account)s"))
    if username is not None:
        where.append(sql.SQL("p.username = lower(%(username)s)"))
    if kind is not None:
        where.append(sql.SQL("e.kind = %(kind)s"))
    if since is not None:
        where.append(sql.SQL("e.occurred_at >= %(since)s"))
    if after is not None:
        where.append(sql.SQL("(e.occurred_at, e.event_id) < (%(after_at)s, %(after_id)s)"))
    query = sql.SQL(
        "SELECT e.event_id, p.username, e.kind, e.occurred_at, e.source, e.job_id "
        "FROM follow_events e JOIN persons p ON p.person_id = e.person_id {where} "
        "ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT %(limit)s"
    ).format(where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
    params = {
        "account": account,
        "kind": kind,
        "since": since,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
        "username": username,
    }
    return query, params


async def list_follow_events(
    conn: AsyncConnection[Any],
    account: str | None,
    *,
    kind: FollowEventKind | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
    after: tuple[dt.datetime, int] | None = None,
    username: str | None = None,
) -> list[FollowEvent]:
    """Follow events of ``account`` (None: any account's), newest first, resuming after
    ``(occurred_at, event_id)`` when given; only ``username``'s (any case) when given."""
    query, params = follow_events_query(
        account=account, kind=kind, since=since, limit=limit, after=after, username=username
    )
    cur = conn.cursor(row_factory=class_row(FollowEvent))
    return await (await cur.execute(query, params)).fetchall()
