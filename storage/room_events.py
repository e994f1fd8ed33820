"""The owner's Events API stream stored: its events, its position, and what they change.

:func:`write_room_events` stores one or more answers of the stream in one transaction:

* every event once (``room_events``, unique by account and event id: a page written twice adds
  nothing the second time);
* the stream's position (``room_event_streams.last_event_id``), in the same transaction, so a
  restart resumes right after the last stored event, neither losing nor repeating one. The
  position never moves back (ids compare as ``<milliseconds>-<sequence>`` numbers);
* the effects of the events that were new: ``follow``/``unfollow`` set the stream account's
  ``account_persons.follower`` at once and each change of it is a ``follow_events`` row of the
  account (``new_follower``/``lost_follower``, source ``events_api``, at the event's time). An
  event older than the person's ``follower_checked_at`` for the account (its last complete
  followers list) changes nothing of the flag: the
  newer observation stands (an event at the list's very time wins: a crawl's time is its
  start). Conversely, :func:`storage.follow_state.reconcile` leaves alone a person whose
  newest ``events_api`` follow event is as new as its list or newer;
* persons for the users who matter: followers and unfollowers (their flag), tippers, fan-club
  joiners and media buyers (persons of interest ``room``, ``storage/targets.py``). Visitors,
  chatters and private messages stay in the events only.

Speed: a burst arrives as pages of ~100 events, so what a page costs beyond its rows counts. The
rows go in with one COPY into a staging table that lives as long as the connection (created
once, emptied at every commit) and one ``INSERT ... SELECT``; the effects and the position ride
on that statement; persons are created by one more statement, only when the page names someone
new who matters. The commit does not wait for the disk (``synchronous_commit`` off for these
transactions only, see ``_PREPARE``). The storage pipeline joins the pages that queued while
a write ran into one write (``crawler/pipelines.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from storage.records import RoomEvent, WriteResult
from storage.tables import ROOM_EVENTS, ROOM_EVENTS_STAGE, names

Connection = psycopg.Connection[Any]

FOLLOW_METHODS = ("follow", "unfollow")
INTEREST_METHODS = ("tip", "fanclubJoin", "mediaPurchase")
"""Methods whose user becomes a person of interest (``room`` in ``storage/targets.py``)."""

_PERSON_METHODS = frozenset(FOLLOW_METHODS + INTEREST_METHODS)

_STAGE = sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
    sql.Identifier(ROOM_EVENTS_STAGE.name), ROOM_EVENTS_STAGE.definitions()
)

# One round trip before the rows: this transaction's commit will not wait for the disk (the
# WAL flush), the page's month has its partition, and which of the page's persons are new.
# * Waiting for the flush cost more than the rows themselves (one flush per page of 100). A
#   database crash may then lose the commits of its last fraction of a second, but events and
#   position together (the log is replayed in order), and the stream reads those events again
#   from the position that survived: the Events API serves every event after a given id.
# * Persons' triggers run per statement, even one that changes no row (a summary refresh, a
#   notification), so persons are inserted only when some are new.
_PREPARE = """
SELECT set_config('synchronous_commit', 'off', true),
       roomwatch_ensure_partitions('room_events'::regclass, 'month', %(at)s, %(at)s),
       (SELECT array_agg(u) FROM unnest(%(names)s::text[]) AS u
        WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.username = u))
"""
_ENSURE = "SELECT roomwatch_ensure_partitions('room_events'::regclass, 'month', %s, %s)"
_PERSONS = "INSERT INTO persons (username) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING"

_FIELDS = [c.name for c in ROOM_EVENTS.fields]

# An id as a sortable text: "<ms>-<seq>" with both numbers zero-padded (never a cast that could
# fail on an id of another form).
_ORDERED = "lpad(split_part({0}, '-', 1), 20, '0') || lpad(split_part({0}, '-', 2), 20, '0')"

# The position moves forward only.
_POSITION = sql.SQL(
    "INSERT INTO room_event_streams AS r (account, last_event_id) VALUES (%(account)s, %(last)s) "
    "ON CONFLICT (account) DO UPDATE "
    "SET last_event_id = excluded.last_event_id, updated_at = excluded.updated_at "
    "WHERE {old} <= {new}"
).format(
    old=sql.SQL(_ORDERED.format("r.last_event_id")),
    new=sql.SQL(_ORDERED.format("excluded.last_event_id")),
)

_INSERT = """
WITH new AS (
    INSERT INTO room_events (account, job_id, {fields})
    SELECT %(account)s, %(job)s::bigint, {fields} FROM {stage} ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING event_id
),
position AS ({position} RETURNING 1){effects}
SELECT (SELECT count(*) FROM new), {changes}
"""

# The follow/unfollow events just stored that may set the flag (newer than the person's last
# complete list), each with the flag before it: the previous such event's, or the stored one.
_EFFECTS = """,
follows AS (
    SELECT p.person_id, s.ord, s.occurred_at, s.method = 'follow' AS state,
           lag(s.method = 'follow', 1, ap.follower)
               OVER (PARTITION BY p.person_id ORDER BY s.ord) AS was
    FROM new n
    JOIN {stage} s ON s.event_id = n.event_id
    JOIN persons p ON p.username = s.username
    LEFT JOIN account_persons ap ON ap.account = %(account)s AND ap.person_id = p.person_id
    WHERE s.method IN ('follow', 'unfollow')
      AND (ap.follower_checked_at IS NULL OR ap.follower_checked_at <= s.occurred_at)
),
flag AS (
    INSERT INTO account_persons AS ap (account, person_id, follower)
    SELECT %(account)s, person_id, state
    FROM (SELECT DISTINCT ON (person_id) person_id, state FROM follows
          ORDER BY person_id, ord DESC) last
    ON CONFLICT (account, person_id) DO UPDATE SET follower = excluded.follower
    WHERE ap.follower IS DISTINCT FROM excluded.follower
    RETURNING 1
),
changes AS (
    INSERT INTO follow_events (account, person_id, kind, occurred_at, source, job_id)
    SELECT %(account)s, person_id,
           CASE WHEN state THEN 'new_follower' ELSE 'lost_follower' END,
           occurred_at, 'events_api', %(job)s::bigint
    FROM follows WHERE state IS DISTINCT FROM was
    RETURNING 1
)"""


def _insert(effects: bool) -> sql.Composed:
    stage = sql.Identifier(ROOM_EVENTS_STAGE.name)
    return sql.SQL(_INSERT).format(
        fields=names(_FIELDS),
        stage=stage,
        position=_POSITION,
        effects=sql.SQL(_EFFECTS).format(stage=stage) if effects else sql.SQL(""),
        changes=sql.SQL("(SELECT count(*) FROM changes)" if effects else "0"),
    )


_INSERT_PLAIN = _insert(effects=False)
_INSERT_WITH_EFFECTS = _insert(effects=True)


def write_room_events(
    conn: Connection,
    account: str,
    events: Sequence[RoomEvent],
    last_event_id: str,
    *,
    job_id: int | None = None,
) -> WriteResult:
    """Stores events of the stream and its position after them, in one transaction.

    Args:
        account: the owner's username (lower case).
        events: in stream order; an event already stored (or listed twice) is stored once and
            has its effects once.
        last_event_id: the position after these events (the last one's id, as ``nextUrl``
            carries it); a position behind the stored one leaves it where it is.

    Returns:
        the events new to the database (``inserted``) and those it had (``duplicates``).
    """
    # An id listed twice is the same event (its first place in the order is kept).
    unique = list({event.event_id: event for event in events}.values())
    params = {"account": account, "job": job_id, "last": last_event_id}
    with conn.transaction():
        if not unique:
            conn.execute(_POSITION, params)
            return WriteResult(inserted=0, duplicates=0)
        # A partition per month that has events, not every month between the first and the
        # last: one odd id far in the future must not create a partition for each month to it.
        first, *others = {e.occurred_at.strftime("%Y-%m"): e.occurred_at for e in unique}.values()
        named = {e.username for e in unique if e.method in _PERSON_METHODS and e.username}
        prepared = conn.execute(_PREPARE, {"at": first, "names": sorted(named)}).fetchone()
        for at in others:
            conn.execute(_ENSURE, [at, at])
        conn.execute(_STAGE)
        ROOM_EVENTS_STAGE.copy_rows(
            conn, (ROOM_EVENTS_STAGE.row((order,), event) for order, event in enumerate(unique))
        )
        if prepared is not None and prepared[2]:
            conn.execute(_PERSONS, [prepared[2]])
        follows = any(event.method in FOLLOW_METHODS for event in unique)
        insert = _INSERT_WITH_EFFECTS if follows else _INSERT_PLAIN
        row = conn.execute(insert, params).fetchone()
    assert row is not None  # the final SELECT always returns one row
    inserted = int(row[0])
    return WriteResult(inserted=inserted, duplicates=len(events) - inserted)


def stream_position(conn: Connection, account: str) -> str | None:
    """The id of the last event stored for ``account``: the stream resumes after it."""
    row = conn.execute(
        "SELECT last_event_id FROM room_event_streams WHERE account = %s", [account]
    ).fetchone()
    return None if row is None else str(row[0])
