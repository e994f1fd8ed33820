"""Keeps ``person_source_latest`` current: per person and source, the newest value of each group.

A group (profile, live, followers, tags, rank, image) is replaced only by an observation of that
group that is at least as new as the one stored, so writes may arrive late or twice and the table
still ends up holding the newest values (idempotent, order-independent).
"""

from __future__ import annotations

from psycopg import sql

from storage import merge_rules

# Group stamp -> its fields, as declared with the merge rules (storage/merge_rules.py).
GROUPS: dict[str, tuple[str, ...]] = {group.stamp: group.fields for group in merge_rules.GROUPS}

COLUMNS: tuple[str, ...] = tuple(
    column for stamp, fields in GROUPS.items() for column in (*fields, stamp)
)


def upsert_latest_sql(select: sql.Composable) -> sql.Composed:
    """``INSERT ... SELECT`` into person_source_latest, newest group wins.

    Args:
        select: a query returning ``person_id, source`` and then every name of :data:`COLUMNS`
            in that order (NULL for the groups the source does not report).
    """
    assignments = []
    for stamp, fields in GROUPS.items():
        newer = sql.SQL(
            "excluded.{stamp} IS NOT NULL AND (t.{stamp} IS NULL OR excluded.{stamp} >= t.{stamp})"
        ).format(stamp=sql.Identifier(stamp))
        for column in (*fields, stamp):
            assignments.append(
                sql.SQL("{col} = CASE WHEN {newer} THEN excluded.{col} ELSE t.{col} END").format(
                    col=sql.Identifier(column), newer=newer
                )
            )
    return sql.SQL(
        "INSERT INTO person_source_latest AS t (person_id, source, {columns}) {select} "
        "ON CONFLICT (person_id, source) DO UPDATE SET {assignments}"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        select=select,
        assignments=sql.SQL(", ").join(assignments),
    )
