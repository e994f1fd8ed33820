"""Reads of the Follow page beyond the person list: ended follows, and each list's last check.

* :func:`list_ended`: the persons whose follow ended: **unfollowed** (the owner stopped
  following them) or **lost followers** (they stopped following the owner). A person is in
  the list when their newest ``unfollowed`` (``lost_follower``) event is newer than their newest
  ``followed`` (``new_follower``) event and the relation is not true now. Each row is the
  person's list row (:class:`~storage.person_list.PersonSummary`) plus ``since`` (the follow
  event before the end; null when the follow predates the list's first complete check, which
  writes no events), ``until`` (the end) and ``seconds`` between them. Newest end first, paged
  by ``(until, person_id)`` like the person list.
* :func:`list_checks`: per list, how many persons it holds now, and its last complete check
  (crawl or import: ``source_polls``) with the changes that check concluded. A reconciliation
  writes all its events at the check's time (``storage/follow_state.py``), so "the changes of
  the last check" are exactly the list's events at that time: what changed since the check
  before it. A check the mass-change guard held wrote nothing, not even its poll row, so it is
  not the last check.

Both are one account's (``account``: its events, its checks, its ``account_persons`` state;
migration 0020); the rows' ``following``/``follower`` are that account's too.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Literal

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import args_row, class_row

from storage.follow_guard import POLL_SOURCES
from storage.follow_state import Relation
from storage.person_list import STORED_COLUMNS, PersonSummary, summary_column

EndedList = Literal["unfollowed", "lost_followers"]

# List -> (persons column, the event that starts the relation, the event that ends it).
ENDED: dict[EndedList, tuple[Relation, str, str]] = {
    "unfollowed": ("following", "followed", "unfollowed"),
    "lost_followers": ("follower", "new_follower", "lost_follower"),
}
_STARTS: dict[Relation, tuple[str, str]] = {rel: (on, off) for rel, on, off in ENDED.values()}


class EndedFollow(PersonSummary, frozen=True):
    """A person whose follow ended: their list row, then when it began, ended, and how long.

    Attributes:
        since: the start event before the end; None: the follow was there at the first check.
        until: the end event (the newest one).
        seconds: ``until - since``; None when ``since`` is.
    """

    since: dt.datetime | None
    until: dt.datetime
    seconds: float | None


class ListCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One follow list now, and what its last complete check concluded.

    Attributes:
        relation: ``following`` (the owner follows them) or ``follower``.
        count: persons the list holds now.
        checked_at: the last complete check; None: never checked completely.
        source: what checked it (``followed_cams``, ``followers``, ``html_import:<relation>``).
        job_id: the crawl job that checked it (None for imports).
        added: ``followed`` / ``new_follower`` events of that check.
        removed: ``unfollowed`` / ``lost_follower`` events of that check.
    """

    relation: Relation
    count: int
    checked_at: dt.datetime | None
    source: str | None
    job_id: int | None
    added: int
    removed: int


def _column(field: str) -> sql.Composable:
    if field in ("since", "until"):
        return sql.Identifier("ended", field)
    if field == "seconds":
        return sql.SQL("extract(epoch FROM ended.until - ended.since)::float8 AS seconds")
    return summary_column(field, per_account=True)


@functools.lru_cache(maxsize=8)
def _ended_sql(relation: Relation, resume: bool) -> sql.Composed:
    after = sql.SQL("AND (n.occurred_at, n.person_id) < (%(after_at)s, %(after_id)s)")
    # The persons' rows as the person list reads them: the stored summary while it is valid,
    # the merge view (roomwatch_due_summaries) for those past valid_until.
    return sql.SQL(
        """
        WITH newest AS (
            SELECT DISTINCT ON (e.person_id) e.person_id, e.occurred_at
            FROM follow_events e WHERE e.kind = %(off)s AND e.account = %(account)s
            ORDER BY e.person_id, e.occurred_at DESC
        ),
        ended AS (
            SELECT n.person_id, n.occurred_at AS until,
                   (SELECT max(b.occurred_at) FROM follow_events b
                    WHERE b.person_id = n.person_id AND b.kind = %(on)s
                      AND b.account = %(account)s AND b.occurred_at < n.occurred_at) AS since
            FROM newest n JOIN account_persons ap
                 ON ap.account = %(account)s AND ap.person_id = n.person_id
            WHERE ap.{relation} IS FALSE
              AND NOT EXISTS (SELECT FROM follow_events b
                              WHERE b.person_id = n.person_id AND b.kind = %(on)s
                                AND b.account = %(account)s
                                AND b.occurred_at >= n.occurred_at)
              {after}
            ORDER BY n.occurred_at DESC, n.person_id DESC
            LIMIT %(limit)s
        ),
        page AS (
            SELECT {stored} FROM person_summary s
            WHERE s.valid_until >= now() AND s.person_id IN (SELECT person_id FROM ended)
            UNION ALL
            SELECT {due} FROM roomwatch_due_summaries() d
            WHERE d.person_id IN (SELECT person_id FROM ended)
              AND EXISTS (SELECT FROM person_summary WHERE valid_until < now())
        )
        SELECT {columns}
        FROM ended JOIN page ON page.person_id = ended.person_id
        CROSS JOIN (SELECT roomwatch_recent_since() AS since OFFSET 0) w
        ORDER BY ended.until DESC, ended.person_id DESC
        """
    ).format(
        relation=sql.Identifier(relation),
        after=after if resume else sql.SQL(""),
        stored=sql.SQL(", ").join(sql.Identifier("s", f) for f in STORED_COLUMNS),
        due=sql.SQL(", ").join(sql.Identifier("d", f) for f in STORED_COLUMNS),
        columns=sql.SQL(", ").join(map(_column, EndedFollow.__struct_fields__)),
    )


def ended_query(
    which: EndedList,
    account: str | None,
    *,
    limit: int | None,
    after: tuple[dt.datetime, int] | None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The query of ``which`` of ``account`` and its parameters, newest end first, resuming
    after ``(until, person_id)``; ``limit=None``: every row (``LIMIT NULL`` is ``LIMIT ALL``,
    what the export reads through a server-side cursor)."""
    relation, on, off = ENDED[which]
    params: dict[str, Any] = {"on": on, "off": off, "limit": limit, "account": account}
    if after is not None:
        params.update(after_at=after[0], after_id=after[1])
    return _ended_sql(relation, after is not None), params


async def list_ended(
    conn: AsyncConnection[Any],
    which: EndedList,
    account: str | None,
    *,
    limit: int = 50,
    after: tuple[dt.datetime, int] | None = None,
) -> list[EndedFollow]:
    """One page of ``which`` of ``account``, newest end first, resuming after
    ``(until, person_id)``."""
    query, params = ended_query(which, account, limit=limit, after=after)
    cur = conn.cursor(row_factory=args_row(EndedFollow))
    return await (await cur.execute(query, params)).fetchall()


_CHECK = sql.SQL(
    """
    SELECT %(relation)s AS relation,
           (SELECT count(*) FROM account_persons
            WHERE account = %(account)s AND {relation}) AS count,
           last.completed_at AS checked_at, last.source, last.job_id,
           (SELECT count(*) FROM follow_events e
            WHERE e.kind = %(on)s AND e.account = %(account)s
              AND e.occurred_at = last.completed_at) AS added,
           (SELECT count(*) FROM follow_events e
            WHERE e.kind = %(off)s AND e.account = %(account)s
              AND e.occurred_at = last.completed_at) AS removed
    FROM (SELECT) one
    LEFT JOIN (SELECT completed_at, source, job_id FROM source_polls
               WHERE source = ANY(%(sources)s::text[]) AND account = %(account)s
               ORDER BY completed_at DESC LIMIT 1) last ON true
    """
)


async def list_checks(conn: AsyncConnection[Any], account: str | None) -> list[ListCheck]:
    """Following, then followers of ``account``: the count now and the last complete check's
    changes."""
    cur = conn.cursor(row_factory=class_row(ListCheck))
    checks = []
    for relation, (on, off) in _STARTS.items():
        query = _CHECK.format(relation=sql.Identifier(relation))
        params = {
            "relation": relation,
            "on": on,
            "off": off,
            "sources": POLL_SOURCES[relation],
            "account": account,
        }
        row = await (await cur.execute(query, params)).fetchone()
        assert row is not None  # one row always: the LEFT JOIN keeps it
        checks.append(row)
    return checks
