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

Follow state is an account's (migration 0020). With one account the row's own ``following`` /
``follower`` (``persons``, ``person_summary``: what any account knows) are that account's, and
every event is; with several, ``per_account`` reads the state of the account named by the
query parameter ``account`` (:func:`relation_column`) and only its events.
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


def relation_column(relation: str, alias: str, per_account: bool) -> sql.Composable:
    """The row ``alias``'s ``following`` or ``follower`` (or their ``_checked_at``): its own
    column, or with ``per_account`` the ``account_persons`` row of ``%(account)s``."""
    if not per_account:
        return sql.Identifier(alias, relation)
    return sql.SQL(
        "(SELECT ap.{relation} FROM account_persons ap "
        "WHERE ap.account = %(account)s AND ap.person_id = {person_id})"
    ).format(relation=sql.Identifier(relation), person_id=sql.Identifier(alias, "person_id"))


def duration_column(name: str, alias: str, per_account: bool = False) -> sql.Composed:
    """``name`` as a select-list expression over the row ``alias`` (which has ``person_id``,
    ``following`` and ``follower``), labelled ``name``; ``per_account``: of ``%(account)s``."""
    relation, state, kind = _RULES[name]
    return sql.SQL(
        "CASE WHEN {relation} IS {state} THEN (SELECT max(e.occurred_at) FROM follow_events e "
        "WHERE e.person_id = {person_id} AND e.kind = {kind}{account}) END AS {name}"
    ).format(
        relation=relation_column(relation, alias, per_account),
        state=sql.SQL("TRUE" if state else "FALSE"),
        person_id=sql.Identifier(alias, "person_id"),
        kind=sql.Literal(kind),
        account=sql.SQL(" AND e.account = %(account)s" if per_account else ""),
        name=sql.Identifier(name),
    )
