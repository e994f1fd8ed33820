"""The person list: merged persons filtered, sorted and paged, read from ``person_summary``.

``person_summary`` (the baseline migration) holds the merge view's list columns for every person,
kept by triggers and indexed per sort key and on tags. Persons whose summary is past its
``valid_until`` (their merge moved with time since it was written) are merged through the view
at read time by ``roomwatch_due_summaries()``; both halves are sorted and cut to the page, then
merged, so a page is always what the view says at this instant, whenever maintenance last ran.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Literal

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import args_row

from storage.follow_durations import FOLLOW_DURATIONS, duration_column, relation_column

PersonSort = Literal["followers", "viewers", "rank", "grank", "last_seen"]
Gender = Literal["f", "m", "c", "t"]
SortValue = int | dt.datetime | None

# Sort key -> (column, descending?). Ranks sort ascending (1 is best); NULLs always last, and
# person_id breaks ties, so (value, person_id) is a total order the keyset can resume from.
SORT_COLUMNS: dict[str, tuple[str, bool]] = {
    "followers": ("followers", True),
    "viewers": ("viewers", True),
    "rank": ("rank", False),
    "grank": ("grank", False),
    "last_seen": ("last_seen_online_at", True),
}
# The counts that every poll moves are not indexed themselves (an update of an indexed column is
# never HOT, and touches every index of the row): their indexes hold a coarse key, a log-scale
# bucket of the count that never decreases as the count grows (migration 0023, decision 0008).
# Sort key -> (key column, the SQL function that computes it). The list orders by the key, then
# the exact count, then person_id: exactly the count's order, read from the key's index with
# each bucket sorted (incremental sort). In a tag's list the key is person_tag_followers'.
SORT_KEYS: dict[str, tuple[str, str]] = {
    "followers": ("followers_key", "roomwatch_followers_key"),
    "viewers": ("viewers_key", "roomwatch_viewers_key"),
}


class PersonSummary(msgspec.Struct, frozen=True):
    """One row of the person list: the merged fields people sort and filter on.

    Positional, in the list query's column order: rows are built with ``args_row``, which cost
    a third of what keyword construction (``class_row``) did for a 51-row page. The follow
    durations (:mod:`storage.follow_durations`) are not stored: the list's outer query reads
    them for the page's rows only.
    """

    person_id: int
    username: str
    display_name: str | None
    gender: str | None
    age: int | None
    country: str | None
    online: bool | None
    current_show: str | None
    viewers: int | None
    followers: int | None
    tags: list[str] | None
    rank: int | None
    grank: int | None
    following: bool | None
    follower: bool | None
    watch: bool
    last_seen_online_at: dt.datetime | None
    image_id: int | None
    image_url: str | None
    live_stale: bool | None
    following_since: dt.datetime | None
    unfollowed_at: dt.datetime | None
    follower_since: dt.datetime | None
    lost_follower_at: dt.datetime | None


class PersonFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What the list keeps; ``None`` means "any". ``False`` also keeps the unknown (NULL).

    ``following``/``follower`` (filters and columns) are ``account``'s. With one account the
    summary's own columns are its (the fast path); ``per_account`` (the install has several)
    reads them from ``account_persons`` instead.
    """

    q: str | None = None
    tag: str | None = None
    following: bool | None = None
    follower: bool | None = None
    online: bool | None = None
    gender: Gender | None = None
    watch: bool | None = None
    account: str | None = None
    per_account: bool = False


# The stored columns: live_stale moves with time, so it is computed from live_newest_at; the
# follow durations are read from follow_events for the page's rows.
_COMPUTED = ("live_stale", *FOLLOW_DURATIONS)
STORED_COLUMNS = (
    *(f for f in PersonSummary.__struct_fields__ if f not in _COMPUTED),
    "live_newest_at",
)
_FLAGS = ("following", "follower", "online", "watch")
# What decides the SQL text (the values are parameters): which filters are set, the flags'
# directions, the sort, and whether and how a keyset position is given.
_Shape = tuple[
    bool, bool, tuple[bool | None, ...], bool, PersonSort, Literal["", "value", "null"], bool
]
_RELATIONS = ("following", "follower")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keyset(
    sort: PersonSort, after: Literal["value", "null"], alias: str, key_alias: str
) -> sql.Composed:
    """Rows strictly after (value, person_id) in ``ORDER BY column <dir> NULLS LAST, person_id``.

    A count's sort also orders by its coarse key first (``SORT_KEYS``; the same order, since
    the key never decreases as the count grows): the condition on the key, which is on
    ``key_alias`` (person_tag_followers in a tag's list), says the same as the one on the count,
    and lets the key's index skip what comes before.
    """
    column, descending = SORT_COLUMNS[sort]
    col = sql.Identifier(alias, column)
    person_id = sql.Identifier(alias, "person_id")
    key = SORT_KEYS.get(sort)
    if after == "null":
        nulls = sql.SQL("({col} IS NULL AND {id} > %(after_id)s)").format(col=col, id=person_id)
        if key is None:
            return nulls
        return sql.SQL("({key} IS NULL AND {nulls})").format(
            key=sql.Identifier(key_alias, key[0]), nulls=nulls
        )
    after_count = sql.SQL(
        "({col} {op} %(after_value)s OR ({col} = %(after_value)s AND {id} > %(after_id)s))"
    ).format(col=col, id=person_id, op=sql.SQL("<" if descending else ">"))
    if key is not None:
        after_count = sql.SQL("({key} <= {function}(%(after_value)s::integer) AND {after})").format(
            key=sql.Identifier(key_alias, key[0]),
            function=sql.Identifier(key[1]),
            after=after_count,
        )
    return sql.SQL("({after} OR {col} IS NULL)").format(after=after_count, col=col)


def _conditions(shape: _Shape, alias: str, order_alias: str | None = None) -> list[sql.Composable]:
    """The filters and the keyset position as conditions on the list's columns of ``alias``;
    with ``order_alias`` (person_tag_followers) the tag and the position are on that table."""
    tag, q, flags, gender, sort, after, per_account = shape
    where: list[sql.Composable] = []
    if tag and order_alias:
        where.append(sql.SQL("{} = %(tag)s").format(sql.Identifier(order_alias, "tag")))
    elif tag:
        where.append(sql.SQL("{} @> ARRAY[%(tag)s]::text[]").format(sql.Identifier(alias, "tags")))
    if q:
        where.append(
            sql.SQL("({} ILIKE %(q)s OR {} ILIKE %(q)s)").format(
                sql.Identifier(alias, "username"), sql.Identifier(alias, "display_name")
            )
        )
    for name, wanted in zip(_FLAGS, flags, strict=True):
        if wanted is not None and per_account and name in _RELATIONS:
            where.append(
                sql.SQL(
                    "{} EXISTS (SELECT FROM account_persons ap WHERE ap.account = %(account)s "
                    "AND ap.person_id = {} AND ap.{})"
                ).format(
                    sql.SQL("" if wanted else "NOT"),
                    sql.Identifier(alias, "person_id"),
                    sql.Identifier(name),
                )
            )
        elif wanted is not None:
            test = "IS TRUE" if wanted else "IS NOT TRUE"
            where.append(sql.SQL("{} " + test).format(sql.Identifier(alias, name)))
    if gender:
        where.append(sql.SQL("{} = %(gender)s").format(sql.Identifier(alias, "gender")))
    if after and sort in SORT_KEYS:
        where.append(_keyset(sort, after, alias, order_alias or alias))
    elif after:
        where.append(_keyset(sort, after, order_alias or alias, order_alias or alias))
    return where


def summary_column(field: str, per_account: bool = False) -> sql.Composable:
    """One column of the list's outer query, which sees only the page's rows (``page``) and the
    recent window's start (``w.since``); other reads of list rows (``storage/follow_lists.py``)
    name them the same and compose their columns with it. ``per_account``: the follow state is
    ``%(account)s``'s."""
    if field == "live_stale":
        return sql.SQL("page.live_newest_at < w.since AS live_stale")
    if field in FOLLOW_DURATIONS:
        return duration_column(field, "page", per_account)
    if field in _RELATIONS and per_account:
        return sql.SQL("{} AS {}").format(
            relation_column(field, "page", per_account), sql.Identifier(field)
        )
    return sql.Identifier("page", field)


@functools.lru_cache(maxsize=512)
def _list_sql(shape: _Shape) -> bytes:
    """The query for one shape, composed once (composing it per request cost more than the
    indexed read it runs)."""
    sort = shape[4]
    column, descending = SORT_COLUMNS[sort]
    direction = sql.SQL("DESC" if descending else "ASC")

    def half(source: str, alias: str, *also: str, order_alias: str | None = None) -> sql.Composed:
        where = [*map(sql.SQL, also), *_conditions(shape, alias, order_alias)]
        order = order_alias or alias
        by = [sql.SQL("{} {} NULLS LAST").format(sql.Identifier(alias, column), direction)]
        if sort in SORT_KEYS:
            key = sql.Identifier(order, SORT_KEYS[sort][0])
            by.insert(0, sql.SQL("{} {} NULLS LAST").format(key, direction))
        return sql.SQL(
            "(SELECT {columns} FROM {source} {where} ORDER BY {by}, {id} LIMIT %(limit)s)"
        ).format(
            columns=sql.SQL(", ").join(sql.Identifier(alias, f) for f in STORED_COLUMNS),
            source=sql.SQL(source),
            where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
            by=sql.SQL(", ").join(by),
            id=sql.Identifier(order, "person_id"),
        )

    kept = (
        # A tag by followers: one range of person_tag_followers' index (by follower key; each
        # bucket sorted by the summary's exact count).
        half(
            "person_tag_followers t JOIN person_summary s ON s.person_id = t.person_id",
            "s",
            "s.valid_until >= now()",
            order_alias="t",
        )
        if shape[0] and sort == "followers"
        else half("person_summary s", "s", "s.valid_until >= now()")
    )

    return (
        sql.SQL(
            "SELECT {columns} FROM ({kept} UNION ALL {due}) page "
            # The window's start, computed once (OFFSET 0 keeps it from being inlined per row).
            "CROSS JOIN (SELECT roomwatch_recent_since() AS since OFFSET 0) w "
            "ORDER BY {column} {direction} NULLS LAST, person_id LIMIT %(limit)s"
        )
        .format(
            # Exactly PersonSummary's fields, in its order (rows are built positionally).
            columns=sql.SQL(", ").join(
                summary_column(f, shape[6]) for f in PersonSummary.__struct_fields__
            ),
            kept=kept,
            # Merging nobody still costs a call of the view; most of the time nobody is due.
            due=half(
                "roomwatch_due_summaries() d",
                "d",
                "EXISTS (SELECT FROM person_summary WHERE valid_until < now())",
            ),
            column=sql.Identifier(column),
            direction=direction,
        )
        .as_bytes()
    )


def list_persons_query(
    filters: PersonFilter,
    *,
    sort: PersonSort,
    limit: int | None,
    after: tuple[SortValue, int] | None,
) -> tuple[bytes, dict[str, Any]]:
    """The person-list query and its parameters: filters, keyset position, one sorted page.

    ``limit=None`` makes the page every matching row (``LIMIT NULL`` is ``LIMIT ALL``): the
    export reads that through a server-side cursor, with the same filters and order.
    """
    params: dict[str, Any] = {"limit": limit, "account": filters.account}
    if filters.tag:
        params["tag"] = filters.tag.lower()  # merged tags are stored lower-case
    if filters.q:
        params["q"] = f"%{_escape_like(filters.q)}%"
    if filters.gender:
        params["gender"] = filters.gender
    position: Literal["", "value", "null"] = ""
    if after is not None:
        params.update(after_value=after[0], after_id=after[1])
        position = "null" if after[0] is None else "value"
    flags = tuple(getattr(filters, name) for name in _FLAGS)
    shape: _Shape = (
        bool(filters.tag),
        bool(filters.q),
        flags,
        bool(filters.gender),
        sort,
        position,
        filters.per_account,
    )
    return _list_sql(shape), params


async def list_persons(
    conn: AsyncConnection[Any],
    filters: PersonFilter,
    *,
    sort: PersonSort = "followers",
    limit: int = 50,
    after: tuple[SortValue, int] | None = None,
) -> list[PersonSummary]:
    """One page of merged persons, resuming after ``(sort value, person_id)`` when given."""
    query, params = list_persons_query(filters, sort=sort, limit=limit, after=after)
    cur = conn.cursor(row_factory=args_row(PersonSummary))
    # A tag's list in another order than by followers (which the tag rows serve) reads the
    # order's index for a common tag and the tags' index for a rare one: only a plan made for
    # the tag knows which. A prepared statement's generic plan guessed wrong since the counts'
    # indexes hold coarse keys (a tag of 6 % of 100,000 persons by viewers: 9.3 ms prepared,
    # 2.0 ms planned each time; docs/benchmarks.md, Round 3), so such lists are never prepared.
    prepare = False if filters.tag and sort != "followers" else None
    return await (await cur.execute(query, params, prepare=prepare)).fetchall()


def sort_value(person: PersonSummary, sort: PersonSort) -> SortValue:
    """The value ``person`` is ordered by under ``sort`` (what a cursor must remember)."""
    value: SortValue = getattr(person, SORT_COLUMNS[sort][0])
    return value
