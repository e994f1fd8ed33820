"""Follow state: whom an account follows and who follows it, and what those lists showed.

Two writes, for the ``followed_cams`` and ``followers`` crawls and for HTML imports alike:

* :func:`record_observations` keeps what a list showed about each room (live status, viewers,
  follower count, tags, subject, profile bits) in ``person_source_latest`` under the list's
  source. Any page that was read may be recorded, complete crawl or not.
* :func:`reconcile` changes the account's ``account_persons.following``/``follower`` (and, by
  trigger, the any-account ``persons`` columns), and only a caller that has proved the list
  complete may call it (every page read, the count matching the site's own).
  Listed persons become true with the check time; persons true before and now absent become
  false; each change is a ``follow_events`` row. A person nobody ever listed stays NULL
  (unknown), so a check never has to touch every person in the database.

A person whose relation the Events API changed after the list was read (a ``new_follower`` or
``lost_follower`` event of source ``events_api`` at or after the list's time,
``storage/room_events.py``) is left as that event set it: a follower who followed during the
crawl is not marked lost.

A complete list that would remove many people at once is refused unless confirmed (the
mass-change guard, ``storage/follow_guard.py``): :func:`reconcile` then raises and changes
nothing. A followers list whose pages show no count is complete only if the Stats API's
follower count confirms it (:class:`CountCheck`); :func:`reconcile` compares the two in its own
transaction, so the count it trusts is the one stored at that moment, and raises (changing
nothing) when none is recent or it does not match.

The very first complete check of a relation (of one account) is a baseline: it sets the state
but writes no events, since "followed" at that moment would date follows that are years old.
From then on a person newly listed (even one known from another source) is
``followed``/``new_follower``.

Each function has a twin for the control API's asynchronous connections; both run the same
statements (built once below), so the two paths cannot drift. Rows go in as one JSON parameter
rather than COPY: lists are a few thousand rows, and one statement serves both connection kinds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, Literal, Required, TypedDict, Unpack

import msgspec
import psycopg
from psycopg import sql

from roomwatch.config import FollowConfig
from storage.accounts import account_name
from storage.follow_guard import (
    EVENT_WINS,
    check_count,
    check_loss,
    count_statement,
    loss_statement,
)
from storage.guards import database_time, database_time_async
from storage.records import RoomObservation
from storage.tables import LIST_ROWS, shown, upsert_latest

Relation = Literal["following", "follower"]
FollowSource = Literal["followed_cams", "followers", "html_import"]
Connection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
_Statement = tuple[sql.Composed | sql.SQL, dict[str, Any]]

_EVENTS: dict[Relation, tuple[str, str]] = {
    "following": ("followed", "unfollowed"),
    "follower": ("new_follower", "lost_follower"),
}


class CountCheck(msgspec.Struct, frozen=True, kw_only=True):
    """A followers list whose pages show no count: complete only if the Stats API's follower
    count of ``account`` (``room_stats``) matches the names read.

    Attributes:
        account: the account whose followers were read (lower case).
        tolerance: how far the names may be from the count (``followers.count_tolerance``).
        max_age_minutes: the count must be observed within this of ``at``
            (``stats.count_max_age_minutes``).
        at: when the list was read, for a saved page (an import); None: now, when the
            conclusion is stored (a crawl).
    """

    account: str
    tolerance: int
    max_age_minutes: int
    at: dt.datetime | None = None


class FollowCheck(TypedDict, total=False):
    """How a complete list was checked: the keyword arguments of :func:`reconcile`.

    Attributes:
        account: whose list it is (lower case; an account of ``accounts``).
        checked_at: when the list was read; a person checked later already is left alone.
        source: what read the list, recorded on each event.
        job_id: the crawl job, or None (imports; the default).
        limits: the mass-change guard's (``follow``); None: the defaults.
        confirm_loss: the user confirmed a loss past those limits (default False).
        count_check: the pages showed no count: the Stats API's count must confirm them
            (None, the default: the list was proved complete without it).
    """

    account: Required[str]
    checked_at: Required[dt.datetime]
    source: Required[FollowSource]
    job_id: int | None
    limits: FollowConfig | None
    confirm_loss: bool
    count_check: CountCheck | None


class FollowChanges(msgspec.Struct, frozen=True, kw_only=True):
    """What one reconciliation changed.

    Attributes:
        listed: persons the complete list held.
        added: events ``followed``/``new_follower`` written.
        removed: events ``unfollowed``/``lost_follower`` written.
        baseline: this was the relation's first complete check (no events by design).
    """

    listed: int
    added: int
    removed: int
    baseline: bool


_ROWS = sql.SQL("jsonb_to_recordset(%(rows)s::jsonb) AS r({})").format(LIST_ROWS.definitions())

_PERSONS = sql.SQL(
    """
    INSERT INTO persons AS p (username, last_seen_online_at)
    SELECT r.username, CASE WHEN r.online THEN %(t)s::timestamptz END
    FROM {rows}
    ON CONFLICT (username) DO UPDATE SET last_seen_online_at = excluded.last_seen_online_at
    WHERE excluded.last_seen_online_at IS NOT NULL
      AND (p.last_seen_online_at IS NULL OR p.last_seen_online_at < excluded.last_seen_online_at)
    """
).format(rows=_ROWS)

# A group gets its time only if the list showed something of it (see storage/latest.py), and
# a row is stored only if it showed anything: a followers page shows nothing but the name.
_SHOWN = {
    "profile_at": "COALESCE(r.age::text, r.gender, r.location, r.country)",
    "live_at": "r.online",
    "followers_at": "r.followers",
    "tags_at": "r.tags",
    "image_at": "r.image_url",
}
_LATEST = upsert_latest(
    {
        "person_id": "p.person_id",
        "source": "%(source)s::text",
        # An observation's fields are named as the latest columns they fill.
        **{c.name: f"r.{c.name}" for c in LIST_ROWS.fields},
        **{stamp: shown(expression) for stamp, expression in _SHOWN.items()},
    },
    sql.SQL("FROM {rows} JOIN persons p ON p.username = r.username WHERE {shown}").format(
        rows=_ROWS,
        shown=sql.SQL(" OR ".join(f"{expression} IS NOT NULL" for expression in _SHOWN.values())),
    ),
)

_ENSURE_LISTED = sql.SQL(
    "INSERT INTO persons (username) SELECT unnest(%(names)s::text[]) ON CONFLICT DO NOTHING"
)
# The account whose list was read exists once something is recorded of it.
_ENSURE_ACCOUNT = sql.SQL(
    "INSERT INTO accounts (account) VALUES (%(account)s) ON CONFLICT DO NOTHING"
)

# One statement, one snapshot: the account's rows as they were (`old`, read in `events`) and
# the CTEs that change them. persons.following/follower follow by trigger (migration 0020).
_RECONCILE = """
WITH baseline AS (
    SELECT NOT EXISTS (SELECT 1 FROM account_persons
                       WHERE account = %(account)s AND {checked} IS NOT NULL) AS yes
),
listed AS (
    INSERT INTO account_persons AS ap (account, person_id, {state}, {checked})
    SELECT %(account)s, p.person_id, true, %(t)s
    FROM persons p
    WHERE p.username = ANY(%(names)s::text[]) AND {event_wins}
    ON CONFLICT (account, person_id) DO UPDATE SET {state} = true, {checked} = %(t)s
    WHERE ap.{checked} IS NULL OR ap.{checked} <= %(t)s
    RETURNING ap.person_id
),
gone AS (
    UPDATE account_persons ap SET {state} = false, {checked} = %(t)s
    FROM persons p
    WHERE ap.account = %(account)s AND ap.{state} AND p.person_id = ap.person_id
      AND NOT (p.username = ANY(%(names)s::text[]))
      AND (ap.{checked} IS NULL OR ap.{checked} <= %(t)s) AND {event_wins}
    RETURNING ap.person_id
),
events AS (
    INSERT INTO follow_events (account, person_id, kind, occurred_at, source, job_id)
    SELECT %(account)s, l.person_id, %(on)s::text, %(t)s::timestamptz, %(source)s::text,
           %(job)s::bigint
    FROM listed l
    LEFT JOIN account_persons old ON old.account = %(account)s AND old.person_id = l.person_id
    WHERE old.{state} IS DISTINCT FROM true AND NOT (SELECT yes FROM baseline)
    UNION ALL
    SELECT %(account)s, person_id, %(off)s::text, %(t)s::timestamptz, %(source)s::text,
           %(job)s::bigint
    FROM gone
    RETURNING kind
)
SELECT (SELECT count(*) FROM listed), (SELECT count(*) FROM events WHERE kind = %(on)s),
       (SELECT count(*) FROM events WHERE kind = %(off)s), (SELECT yes FROM baseline)
"""

_COMPLETE_POLL = sql.SQL(
    "INSERT INTO source_polls (source, account, completed_at, job_id, rows_seen) "
    "VALUES (%(poll)s, %(account)s, %(t)s, %(job)s::bigint, %(count)s) "
    "ON CONFLICT (source, account, completed_at) DO NOTHING"
)


def _observation_statements(
    rows: Sequence[RoomObservation], source: FollowSource, observed_at: dt.datetime
) -> list[_Statement]:
    params = {
        # One row per person (the statements would otherwise meet a person twice).
        "rows": msgspec.json.encode(list({row.username: row for row in rows}.values())).decode(),
        "t": observed_at,
        "source": source,
    }
    return [(_PERSONS, params), (_LATEST, params)]


def _reconcile_statements(
    relation: Relation, usernames: Collection[str], checked_at: dt.datetime, check: FollowCheck
) -> tuple[list[_Statement], _Statement, _Statement]:
    names = sorted({name.lower() for name in usernames})
    on, off = _EVENTS[relation]
    source = check["source"]
    params = {
        "account": account_name(check["account"]),
        "names": names,
        "t": checked_at,
        "on": on,
        "off": off,
        "source": source,
        "job": check.get("job_id"),
        # source_polls tells the two relations of an HTML import apart.
        "poll": source if source != "html_import" else f"html_import:{relation}",
        "count": len(names),
    }
    reconcile = sql.SQL(_RECONCILE).format(
        state=sql.Identifier(relation),
        checked=sql.Identifier(f"{relation}_checked_at"),
        event_wins=sql.SQL(EVENT_WINS.format(person="p.person_id")),
    )
    setup: list[_Statement] = [
        (_ENSURE_ACCOUNT, params),
        (_ENSURE_LISTED, params),
        (_COMPLETE_POLL, params),
    ]
    return setup, (loss_statement(relation), params), (reconcile, params)


def _count_statement(check: FollowCheck) -> _Statement | None:
    """The query of the Stats API count that must confirm the list, if one must."""
    count = check.get("count_check")
    if count is None:
        return None
    return count_statement(), {
        "account": count.account.lower(),
        "at": count.at,
        "minutes": count.max_age_minutes,
    }


def _listed(usernames: Collection[str]) -> int:
    return len({name.lower() for name in usernames})


def _check_count(listed: int, check: FollowCheck, row: tuple[Any, ...] | None) -> None:
    count = check.get("count_check")
    assert count is not None
    check_count(listed, count, row)


def _check_loss(relation: Relation, current: int, removed: int, check: FollowCheck) -> None:
    limits = check.get("limits") or FollowConfig()
    check_loss(relation, current, removed, limits, confirmed=check.get("confirm_loss", False))


def _counts(row: tuple[Any, ...] | None) -> tuple[int, int]:
    assert row is not None  # an aggregate always returns one row
    return int(row[0]), int(row[1])


def _changes(row: tuple[Any, ...] | None) -> FollowChanges:
    assert row is not None  # the final SELECT always returns one row
    return FollowChanges(listed=row[0], added=row[1], removed=row[2], baseline=row[3])


def record_observations(
    conn: Connection,
    rows: Sequence[RoomObservation],
    *,
    source: FollowSource,
    observed_at: dt.datetime,
) -> int:
    """Stores what a list showed, in one transaction; returns the rows given.

    Args:
        conn: a connection (the write commits unless an outer transaction is open).
        rows: the observations (a username listed twice keeps one of its rows).
        source: ``followed_cams``, ``followers`` or ``html_import``.
        observed_at: when the list was read; older than what is stored changes nothing.
    """
    if not rows:
        return 0
    with conn.transaction():
        observed_at = database_time(conn, observed_at)
        for statement, params in _observation_statements(rows, source, observed_at):
            conn.execute(statement, params)
    return len(rows)


async def record_observations_async(
    conn: AsyncConnection,
    rows: Sequence[RoomObservation],
    *,
    source: FollowSource,
    observed_at: dt.datetime,
) -> int:
    """:func:`record_observations` on an asynchronous connection."""
    if not rows:
        return 0
    async with conn.transaction():
        observed_at = await database_time_async(conn, observed_at)
        for statement, params in _observation_statements(rows, source, observed_at):
            await conn.execute(statement, params)
    return len(rows)


def reconcile(
    conn: Connection, relation: Relation, usernames: Collection[str], **check: Unpack[FollowCheck]
) -> FollowChanges:
    """Sets the relation from a complete list, in one transaction (rules in the module doc).

    Call it only for a list proved complete: every absent person who was true becomes false.

    Args:
        conn: a connection (the write commits unless an outer transaction is open).
        relation: ``following`` (the owner follows them) or ``follower`` (they follow the owner).
        usernames: everyone the complete list held (any case).
        **check: how the list was checked (:class:`FollowCheck`).

    Raises:
        FollowLossHeld: the list would remove too many (nothing was changed).
        CountUnconfirmed: ``count_check`` was given and no Stats API count observed within its
            window matches the list (nothing was changed).
    """
    with conn.transaction():
        counted = _count_statement(check)
        if counted is not None:
            _check_count(_listed(usernames), check, conn.execute(*counted).fetchone())
        checked_at = database_time(conn, check["checked_at"])
        setup, loss, final = _reconcile_statements(relation, usernames, checked_at, check)
        for statement, params in setup:
            conn.execute(statement, params)
        current, removed = _counts(conn.execute(*loss).fetchone())
        _check_loss(relation, current, removed, check)
        return _changes(conn.execute(*final).fetchone())


async def reconcile_async(
    conn: AsyncConnection,
    relation: Relation,
    usernames: Collection[str],
    **check: Unpack[FollowCheck],
) -> FollowChanges:
    """:func:`reconcile` on an asynchronous connection."""
    async with conn.transaction():
        counted = _count_statement(check)
        if counted is not None:
            cursor = await conn.execute(*counted)
            _check_count(_listed(usernames), check, await cursor.fetchone())
        checked_at = await database_time_async(conn, check["checked_at"])
        setup, loss, final = _reconcile_statements(relation, usernames, checked_at, check)
        for statement, params in setup:
            await conn.execute(statement, params)
        cursor = await conn.execute(*loss)
        current, removed = _counts(await cursor.fetchone())
        _check_loss(relation, current, removed, check)
        cursor = await conn.execute(*final)
        return _changes(await cursor.fetchone())
