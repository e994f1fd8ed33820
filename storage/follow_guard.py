"""Guards of follow-state reconciliation: the mass-change limit and the last check of a list.

A complete list is trusted to set follow state, but a site change (new markup, an empty page
that still looks complete) can make a list look complete and short. So a reconciliation that
would remove more than ``max(follow.max_loss_count, follow.max_loss_share * current)`` people
is refused with :class:`~roomwatch.errors.FollowLossHeld` (its transaction rolled back, so
nothing is concluded) until the user confirms it. The crawl job then fails with the message,
which carries :data:`HELD`, and ``storage/alerts.py`` raises an alert from that job.

Saved pages (HTML imports) carry their own time; one saved before the list's last complete
check would roll follow state back, so :func:`last_check` tells the importer when that was,
by the database's clock.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from psycopg import sql

from roomwatch.config import FollowConfig
from roomwatch.errors import FollowLossHeld

if TYPE_CHECKING:
    import psycopg

    from storage.follow_state import Relation

HELD = "held, not concluded"
"""In every guard message; the alert query finds held crawls by it."""

_WORDS: dict[str, tuple[str, str]] = {
    "following": ("followed rooms", "unfollowed"),
    "follower": ("followers", "lost"),
}

# The list's complete checks are rows of source_polls (see follow_state._COMPLETE_POLL).
POLL_SOURCES: dict[str, list[str]] = {
    "following": ["followed_cams", "html_import:following"],
    "follower": ["followers", "html_import:follower"],
}

EVENT_WINS = """NOT EXISTS (
    SELECT 1 FROM follow_events e
    WHERE e.person_id = {person} AND e.kind IN (%(on)s, %(off)s) AND e.source = 'events_api'
      AND e.occurred_at >= %(t)s)"""
"""A person the list leaves alone: the Events API changed the relation at or after the list's
time (``storage/room_events.py``); the newer news stands. On a tie the event wins: a crawl's
time is its start, and it read its pages after. Parameters ``on``, ``off`` (the
relation's event kinds) and ``t`` (the list's time); ``{person}`` is the person's id."""

LOSS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE NOT (username = ANY(%(names)s::text[]))
                        AND ({checked} IS NULL OR {checked} <= %(t)s)
                        AND {event_wins})
FROM persons p WHERE {state}
"""

LAST_CHECK = (
    "SELECT now(), max(completed_at) FROM source_polls WHERE source = ANY(%(sources)s::text[])"
)


def loss_statement(relation: Relation) -> sql.Composed:
    """Counts the persons the relation holds now and those a reconciliation would remove."""
    return sql.SQL(LOSS_SQL).format(
        state=sql.Identifier(relation),
        checked=sql.Identifier(f"{relation}_checked_at"),
        event_wins=sql.SQL(EVENT_WINS.format(person="p.person_id")),
    )


def check_loss(
    relation: Relation, current: int, removed: int, limits: FollowConfig, *, confirmed: bool
) -> None:
    """Refuses a loss past the limits unless the user confirmed it.

    Raises:
        FollowLossHeld: ``removed > max(max_loss_count, max_loss_share * current)``, not
            confirmed; the message says how many and why (the caller adds how to confirm).
    """
    allowed = max(limits.max_loss_count, limits.max_loss_share * current)
    if confirmed or removed <= allowed:
        return
    label, word = _WORDS[relation]
    share = round(100 * removed / current) if current else 100
    raise FollowLossHeld(
        f"{label}: {removed} of {current} would be marked {word} ({share} % > "
        f"{limits.max_loss_share * 100:g} %, more than {limits.max_loss_count}); {HELD}"
    )


def last_check(
    conn: psycopg.Connection[Any], relation: Relation
) -> tuple[dt.datetime, dt.datetime | None]:
    """The database's time now and the list's last complete check (None: never checked)."""
    row = conn.execute(LAST_CHECK, {"sources": POLL_SOURCES[relation]}).fetchone()
    assert row is not None  # an aggregate always returns a row
    return row[0], row[1]


async def last_check_async(
    conn: psycopg.AsyncConnection[Any], relation: Relation
) -> tuple[dt.datetime, dt.datetime | None]:
    """:func:`last_check` on an asynchronous connection."""
    cursor = await conn.execute(LAST_CHECK, {"sources": POLL_SOURCES[relation]})
    row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]
