"""Who the crawls ask about (CBHours stats, thumbnails): reads that turn persons into targets.

The crawl process calls these (through a spider's ``prepare``) with its own connection before
the crawl starts, so spiders get plain lists of usernames and never connect themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import psycopg
from psycopg import sql

from storage.room_events import INTEREST_METHODS

# The Events API stream's stored position, read by the room_events spider in prepare(); it is
# written (and defined) with the events themselves.
from storage.room_events import stream_position as stream_position

Connection = psycopg.Connection[Any]
Interest = Literal["following", "follower", "watch", "room"]

# Each kind of interest as a condition on persons (following/follower may be unknown: NULL).
# "room": whoever tipped, joined the fan club or bought media in the owner's room (the Events
# API; visitors and chatters are not, they stay in the events). Read from the events kept, so
# a tipper whose events passed retention is no longer one; the condition is the predicate of
# the index room_events_interest (migration 0015), which answers it.
_INTEREST: dict[str, sql.Composable] = {
    "following": sql.SQL("p.following IS TRUE"),
    "follower": sql.SQL("p.follower IS TRUE"),
    "watch": sql.SQL("p.watch"),
    "room": sql.SQL(
        "p.username IN (SELECT e.username FROM room_events e "
        "WHERE e.method IN ({}) AND e.username IS NOT NULL)"
    ).format(sql.SQL(", ").join(map(sql.Literal, INTEREST_METHODS))),
}


def _of_interest(kinds: Sequence[Interest]) -> sql.Composable:
    if not kinds:
        return sql.SQL("false")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(_INTEREST[kind] for kind in kinds))


def cbhours_live_targets(
    conn: Connection, kinds: Sequence[Interest], recheck_days: int
) -> list[str]:
    """Persons of interest whose live CBHours stats are worth asking for, by username.

    A person is asked about while their trophy status is true or unknown; one CBHours did not
    know is asked again only once ``recheck_days`` have passed since that answer (a trophy can
    be added to a bio at any time, but asking every poll would waste the 1 request/second).
    """
    query = sql.SQL(
        """
        SELECT p.username FROM persons p
        WHERE {interest}
          AND (p.has_cbhours_trophy IS NOT FALSE
               OR p.cbhours_trophy_checked_at IS NULL
               OR p.cbhours_trophy_checked_at < now() - make_interval(days => %(days)s))
        ORDER BY p.username
        """
    ).format(interest=_of_interest(kinds))
    return [row[0] for row in conn.execute(query, {"days": recheck_days})]


def cbhours_activity_targets(conn: Connection, kinds: Sequence[Interest]) -> list[str]:
    """Persons of interest known to have a CBHours trophy (the API answers only for them)."""
    query = sql.SQL(
        "SELECT p.username FROM persons p WHERE {interest} AND p.has_cbhours_trophy "
        "ORDER BY p.username"
    ).format(interest=_of_interest(kinds))
    return [row[0] for row in conn.execute(query)]


def without_cbhours_activity(conn: Connection, usernames: Iterable[str]) -> set[str]:
    """The usernames with no CBHours activity stored yet (neither segments nor daily totals).

    For these the activity crawl first asks which months CBHours has and backfills them.
    """
    names = sorted({name.lower() for name in usernames})
    rows = conn.execute(
        """
        SELECT n.username FROM unnest(%s::text[]) AS n (username)
        LEFT JOIN persons p ON p.username = n.username
        WHERE p.person_id IS NULL
           OR (NOT EXISTS (SELECT 1 FROM cbhours_activity a WHERE a.person_id = p.person_id)
               AND NOT EXISTS (SELECT 1 FROM cbhours_daily_activity d
                               WHERE d.person_id = p.person_id))
        """,
        [names],
    )
    return {row[0] for row in rows}


def thumbnail_targets(
    conn: Connection, kinds: Sequence[Interest], min_interval_hours: float
) -> list[str]:
    """Persons of interest due for a thumbnail, by username.

    Due means no image fetched within the last ``min_interval_hours``: never one, or the
    newest is older. A download that brought back content already stored refreshes that row's
    ``fetched_at``, so an unchanged picture is not fetched again every poll either.
    """
    query = sql.SQL(
        """
        SELECT p.username FROM persons p
        WHERE {interest}
          AND NOT EXISTS (
              SELECT 1 FROM images i
              WHERE i.person_id = p.person_id
                AND i.fetched_at > now() - %(hours)s * interval '1 hour')
        ORDER BY p.username
        """
    ).format(interest=_of_interest(kinds))
    return [row[0] for row in conn.execute(query, {"hours": min_interval_hours})]
