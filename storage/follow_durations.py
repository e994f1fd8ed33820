"""Follow durations: since when a person is followed (or follows the owner), or when that ended.

Derived from ``follow_events`` when read, never stored: an event is the only record of when a
relation began or ended, and a stored copy would be one more thing for every writer to keep.

* ``following_since``: the newest ``followed`` event while the owner follows the person now;
* ``unfollowed_at``: the newest ``unfollowed`` event while the owner does not follow them now;
* ``follower_since`` / ``lost_follower_at``: the same for ``new_follower`` / ``lost_follower``.

Each is null when unknown: the first complete check of a list writes no events (it cannot tell
how old a follow is; see :mod:`storage.follow_state`), so a person followed since then has no
``following_since``. "Not followed now" is a state of ``false``: a relation that was never
checked (NULL) has no unfollow to report, and testing ``IS FALSE`` rather than ``IS NOT TRUE``
spares the lookup for the many persons no list ever named.

Each value is one probe of ``follow_events_person_kind`` (migration 0011); callers compute
them only for the rows they return (a list page, one person, the rows of an export).
"""

from __future__ import annotations

from psycopg import sql

# Column -> (the relation's column on persons, the state it needs, the event kind it reads).
_RULES: dict[str, tuple[str, bool, str]] = {
    "following_since": ("following", True, "followed"),
    "unfollowed_at": ("following", False, "unfollowed"),
    "follower_since": ("follower", True, "new_follower"),
    "lost_follower_at": ("follower", False, "lost_follower"),
}
FOLLOW_DURATIONS: tuple[str, ...] = tuple(_RULES)
"""The duration columns, in the order the rows that carry them declare them."""


def duration_column(name: str, alias: str) -> sql.Composed:
    """``name`` as a select-list expression over the row ``alias`` (which has ``person_id``,
    ``following`` and ``follower``), labelled ``name``."""
    relation, state, kind = _RULES[name]
    return sql.SQL(
        "CASE WHEN {relation} IS {state} THEN (SELECT max(e.occurred_at) FROM follow_events e "
        "WHERE e.person_id = {person_id} AND e.kind = {kind}) END AS {name}"
    ).format(
        relation=sql.Identifier(alias, relation),
        state=sql.SQL("TRUE" if state else "FALSE"),
        person_id=sql.Identifier(alias, "person_id"),
        kind=sql.Literal(kind),
        name=sql.Identifier(name),
    )
