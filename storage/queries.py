"""Read queries over the merged state (SQL constants and compositions)."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

Connection = psycopg.Connection[Any]
PersonSort = Literal["followers", "viewers", "rank", "grank", "last_seen"]

# Sort key -> (expression, direction). Ranks sort ascending (1 is best); NULLs always last.
_SORTS: dict[str, tuple[str, str]] = {
    "followers": ("followers", "DESC"),
    "viewers": ("viewers", "DESC"),
    "rank": ("rank", "ASC"),
    "grank": ("grank", "ASC"),
    "last_seen": ("last_seen_online_at", "DESC"),
}

PERSON_BY_USERNAME = "SELECT * FROM v_person_current_state WHERE username = lower(%s)"

ROW_COUNTS = """
SELECT (SELECT count(*) FROM persons) AS persons,
       (SELECT count(*) FROM crawl_jobs) AS crawl_jobs,
       (SELECT count(*) FROM follow_events) AS follow_events,
       (SELECT count(*) FROM login_sessions) AS login_sessions,
       (SELECT reltuples::bigint FROM pg_class WHERE oid = 'affiliate_api_snapshots'::regclass)
           AS affiliate_api_snapshots_estimate
"""


def get_person(conn: Connection, username: str) -> dict[str, Any] | None:
    """The merged current state of one person, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(PERSON_BY_USERNAME, [username]).fetchone()


def list_persons_sql(*, tag: str | None, sort: PersonSort, limit: int) -> sql.Composed:
    """The person-list query: filters, then one page sorted on a merged field.

    A tag filter first narrows the persons to those that some source tags with it (GIN index on
    the latest table, a necessary condition), so only those are merged; the merged tags then
    decide, which keeps "tag" meaning "carries the tag now".
    """
    where: list[sql.Composable] = []
    if tag is not None:
        where.append(
            sql.SQL(
                "v.person_id IN (SELECT person_id FROM person_source_latest "
                "WHERE tags @> ARRAY[{tag}]::text[]) AND v.tags @> ARRAY[{tag}]::text[]"
            ).format(tag=sql.Placeholder("tag"))
        )
    column, direction = _SORTS[sort]
    return sql.SQL(
        "SELECT * FROM v_person_current_state v {where} "
        "ORDER BY v.{column} {direction} NULLS LAST, v.person_id LIMIT {limit}"
    ).format(
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        column=sql.Identifier(column),
        direction=sql.SQL(direction),
        limit=sql.Literal(limit),
    )


def list_persons(
    conn: Connection, *, tag: str | None = None, sort: PersonSort = "followers", limit: int = 50
) -> list[dict[str, Any]]:
    """One page of merged persons (see :func:`list_persons_sql`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            list_persons_sql(tag=tag, sort=sort, limit=limit), {"tag": tag}
        ).fetchall()
