"""The merge rules (INTERFACE.md "Sources and priority") as data, and the SQL generated from them.

This module is the one place that says which sources exist, in which order each field group
trusts them, what kind of rule each group follows, which fields each group holds, and which
merged columns ``person_summary`` keeps. From it come the migration SQL of the merge view
``v_person_current_state``, of ``v_person_summary`` and of the summary functions that restate
column lists (:func:`generated_sql`), and the column lists Python reads (``storage/latest.py``,
``storage/person_queries.py``).

The generated SQL is committed inside the migrations, between :data:`BEGIN` and :data:`END`;
``tests/storage/test_merge_rules.py`` fails when the newest committed block differs from what
this module generates now. Changing a rule is one edit here plus a new migration written by
``python -m storage.merge_rules new-migration NAME`` (docs/architecture.md, "Changing a
priority"): applied migrations are immutable.
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from psycopg import sql

# Every source that writes person_source_latest, in the order "other sources slot in" after the
# ones a group names (INTERFACE.md). Adding a source: append it here.
SOURCES: tuple[str, ...] = (
    "affiliate",
    "cbhours",
    "profile_cache",
    "followed_cams",
    "followers",
    "html_import",
    "events_api",
    "stats_api",
)


class Rule(enum.Enum):
    """How a group picks its winning source."""

    # Per field: the first source in order whose value is not null.
    FIRST_NON_NULL = "first non-null"
    # Per group: the first source in order whose observation is recent, else the newest known
    # observation of any source, marked stale.
    FIRST_RECENT = "first recent"
    # The group's one source, or nothing.
    ONLY = "only"


class Group(NamedTuple):
    """A field group of person_source_latest and how the view merges it."""

    stamp: str  # the column holding when the source observed the group
    fields: tuple[str, ...]
    rule: Rule
    order: tuple[str, ...]  # sources, most authoritative first

    @property
    def prefix(self) -> str:
        """The group's provenance columns in the view: ``<prefix>_source``, ...``_observed_at``."""
        return self.stamp.removesuffix("_at")


def _priority(*named: str, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The named sources first, then every other one (but ``without``) in :data:`SOURCES` order."""
    return (*named, *(s for s in SOURCES if s not in named and s not in without))


# The groups, in person_source_latest's column order. profile_cache caches profiles and images
# only, so the live, follower and tag groups never consider it.
GROUPS: tuple[Group, ...] = (
    Group(
        "profile_at",
        ("display_name", "age", "birthday", "gender", "location", "country", "spoken_languages"),
        Rule.FIRST_NON_NULL,
        _priority("affiliate", "cbhours", "profile_cache"),
    ),
    Group(
        "live_at",
        ("online", "current_show", "viewers", "subject"),
        Rule.FIRST_RECENT,
        _priority("affiliate", "cbhours", without=("profile_cache",)),
    ),
    Group(
        "followers_at",
        ("followers",),
        Rule.FIRST_RECENT,
        _priority("cbhours", "affiliate", without=("profile_cache",)),
    ),
    Group(
        "tags_at",
        ("tags",),
        Rule.FIRST_RECENT,
        _priority("affiliate", "cbhours", without=("profile_cache",)),
    ),
    Group("rank_at", ("rank", "grank"), Rule.ONLY, ("cbhours",)),
    Group("image_at", ("image_url",), Rule.FIRST_RECENT, _priority("affiliate", "cbhours")),
)

# The view's columns read from persons as they are: view column -> persons column.
PERSON_COLUMNS: dict[str, str] = {
    "person_id": "person_id",
    "username": "username",
    "first_seen_at": "first_seen_at",
    "last_seen_online_at": "last_seen_online_at",
    "following": "following",
    "follower": "follower",
    "following_checked_at": "following_checked_at",
    "follower_checked_at": "follower_checked_at",
    "has_cbhours_trophy": "has_cbhours_trophy",
    "cbhours_trophy_checked_at": "cbhours_trophy_checked_at",
    "watch": "watch",
    "image_id": "latest_image_id",
}

# When a person was last seen online: persons keeps the sightings that are over (a source's
# live group said online, then was replaced by an offline observation: the trigger
# person_source_latest_seen_offline keeps its time), and the view adds the live observations
# that still say online. So a poll of a person who stays online writes no persons row.
SEEN_ONLINE = "last_seen_online_at"

# person_summary's columns copied from the view, in the table's order; it also stores
# live_newest_at (the newest live observation of any source, live_stale is computed from it
# when read) and valid_until (see v_person_summary).
SUMMARY_VIEW_COLUMNS: tuple[str, ...] = (
    "person_id",
    "username",
    "display_name",
    "gender",
    "age",
    "country",
    "online",
    "current_show",
    "viewers",
    "followers",
    "tags",
    "rank",
    "grank",
    "following",
    "follower",
    "watch",
    "last_seen_online_at",
    "image_id",
    "image_url",
)
SUMMARY_COLUMNS: tuple[str, ...] = (*SUMMARY_VIEW_COLUMNS, "live_newest_at", "valid_until")
# person_summary's last columns, generated from the counts (migration 0023): the coarse sort keys
# the list's follower and viewer indexes hold (storage/person_list.py, SORT_KEYS). Nothing
# writes them; the merge never reads them.
SUMMARY_SORT_KEYS: tuple[str, ...] = ("followers_key", "viewers_key")

BEGIN = "-- BEGIN GENERATED by storage/merge_rules.py: do not edit, regenerate"
END = "-- END GENERATED by storage/merge_rules.py"

_LIVE = next(g for g in GROUPS if g.stamp == "live_at")
"""The group whose newest observation person_summary keeps (live_stale), and whose online
observations count as sightings (SEEN_ONLINE)."""


def recent_groups() -> tuple[Group, ...]:
    """The groups whose winner depends on the "recent" window."""
    return tuple(g for g in GROUPS if g.rule is Rule.FIRST_RECENT)


def provenance(field: str) -> tuple[str, bool]:
    """The prefix of ``field``'s provenance columns in the view, and whether it has ``_stale``."""
    for group in GROUPS:
        if field in group.fields:
            if group.rule is Rule.FIRST_NON_NULL:
                return field, False
            return group.prefix, group.rule is Rule.FIRST_RECENT
    raise KeyError(field)


# -- SQL generation -------------------------------------------------------------------------

_I = sql.Identifier
_L = sql.Literal


def _col(alias: str, column: str) -> sql.Composable:
    return _I(alias, column)


def _comma(parts: Sequence[sql.Composable], sep: str = ",\n    ") -> sql.Composable:
    return sql.SQL(sep).join(parts)


def _filled(parts: Sequence[sql.Composable], indent: str) -> sql.Composable:
    """``parts`` comma-separated, as many on a line as fit in 100 characters."""
    lines = [""]
    for text in (part.as_string(None) for part in parts):
        if lines[-1] and len(indent) + len(lines[-1]) + len(text) + 3 > 100:
            lines.append("")
        lines[-1] += f"{', ' if lines[-1] else ''}{text}"
    # Already composed (identifiers quoted, literals escaped): joined as they are.
    return sql.SQL(",\n" + indent).join(sql.SQL(line) for line in lines)


_WHEN = sql.SQL("\n         ")  # the WHENs of a CASE, one a line, under the view's columns


def _pick(selector: sql.Composable, order: tuple[str, ...], column: str) -> sql.Composable:
    """``column`` of the source that ``selector`` names."""
    return sql.SQL("CASE {}{}{} END").format(
        selector,
        _WHEN,
        _WHEN.join(sql.SQL("WHEN {} THEN {}").format(_L(s), _col(s, column)) for s in order),
    )


def _newest(group: Group) -> sql.Composable:
    return sql.SQL("GREATEST({})").format(
        sql.SQL(", ").join(_col(s, group.stamp) for s in group.order)
    )


def _recent_winner(group: Group) -> sql.Composable:
    """The FIRST_RECENT rule: the first source in order observed at or after ``k.at``, else the
    one with the newest observation."""
    recent = _WHEN.join(
        sql.SQL("WHEN {} >= k.at THEN {}").format(_col(s, group.stamp), _L(s)) for s in group.order
    )
    newest = sql.SQL("\n              ").join(
        sql.SQL("WHEN {} THEN {}").format(_col(s, group.stamp), _L(s)) for s in group.order
    )
    return sql.SQL("CASE {}{}ELSE CASE {}\n              {} END END").format(
        recent, _WHEN, _newest(group), newest
    )


def _first_non_null(group: Group, field: str) -> sql.Composable:
    """The FIRST_NON_NULL rule: the first source in order that has a value for ``field``."""
    return sql.SQL("CASE {} END").format(
        _WHEN.join(
            sql.SQL("WHEN {} IS NOT NULL THEN {}").format(_col(s, field), _L(s))
            for s in group.order
        )
    )


def _current_state_view() -> sql.Composable:
    outer: list[sql.Composable] = [
        sql.SQL("p.{}").format(_I(column))
        if name == column
        else sql.SQL("p.{} AS {}").format(_I(column), _I(name))
        for name, column in PERSON_COLUMNS.items()
    ]
    outer[list(PERSON_COLUMNS).index(SEEN_ONLINE)] = sql.SQL("GREATEST({}) AS {}").format(
        _filled(
            [_col("p", PERSON_COLUMNS[SEEN_ONLINE])]
            + [
                sql.SQL("CASE WHEN {} THEN {} END").format(_col(s, "online"), _col(s, _LIVE.stamp))
                for s in _LIVE.order
            ],
            " " * 13,
        ),
        _I(SEEN_ONLINE),
    )
    decided: list[sql.Composable] = []  # columns of the lateral subquery m
    for group in GROUPS:
        if group.rule is Rule.FIRST_NON_NULL:
            for field in group.fields:
                source = _I(f"{field}_source")
                decided.append(sql.SQL("{} AS {}").format(_first_non_null(group, field), source))
                chosen = sql.SQL("m.{}").format(source)
                outer += [
                    sql.SQL("{} AS {}").format(_pick(chosen, group.order, field), _I(field)),
                    chosen,
                    sql.SQL("{} AS {}").format(
                        _pick(chosen, group.order, group.stamp), _I(f"{field}_observed_at")
                    ),
                ]
        elif group.rule is Rule.FIRST_RECENT:
            source, stale = _I(f"{group.prefix}_source"), _I(f"{group.prefix}_stale")
            newest = _I(f"{group.prefix}_newest_at")
            decided += [
                sql.SQL("{} AS {}").format(_recent_winner(group), source),
                sql.SQL("{} AS {}").format(_newest(group), newest),
            ]
            chosen = sql.SQL("m.{}").format(source)
            outer += [
                sql.SQL("{} AS {}").format(_pick(chosen, group.order, f), _I(f))
                for f in group.fields
            ]
            outer += [
                chosen,
                sql.SQL("{} AS {}").format(
                    _pick(chosen, group.order, group.stamp), _I(f"{group.prefix}_observed_at")
                ),
                sql.SQL("m.{} < k.at AS {}").format(newest, stale),
                sql.SQL("m.{}").format(newest),
            ]
        else:
            (only,) = group.order
            outer += [sql.SQL("{} AS {}").format(_col(only, f), _I(f)) for f in group.fields]
            outer += [
                sql.SQL("CASE WHEN {} IS NOT NULL THEN {} END AS {}").format(
                    _col(only, group.stamp), _L(only), _I(f"{group.prefix}_source")
                ),
                sql.SQL("{} AS {}").format(
                    _col(only, group.stamp), _I(f"{group.prefix}_observed_at")
                ),
            ]
    joins = sql.SQL("\n").join(
        sql.SQL(
            "LEFT JOIN person_source_latest {a} ON {a}.person_id = p.person_id AND {a}.source = {s}"
        ).format(a=_I(s), s=_L(s))
        for s in SOURCES
    )
    return sql.SQL(
        "CREATE VIEW v_person_current_state AS\nSELECT\n    {outer}\nFROM persons p\n"
        # OFFSET 0 keeps the planner from pulling the subquery up, which would evaluate the
        # window once per reference (37 InitPlans per person merged) instead of once per query.
        "CROSS JOIN (SELECT roomwatch_recent_since() AS at OFFSET 0) k\n{joins}\n"
        "CROSS JOIN LATERAL (\n    SELECT\n    {decided}\n) m;"
    ).format(outer=_comma(outer), joins=joins, decided=_comma(decided))


def _summary_view() -> sql.Composable:
    # A group's merge moves with time only when its winner won for being recent and some other
    # source has a newer observation: once the winner leaves the window, that newer one (or a
    # source between them) wins. Otherwise the winner stays the newest known, and only its
    # staleness changes (computed when read). The newest observations come from the sources the
    # current state joined already: an aggregate over the person's rows was a third of a
    # 10,000-person merge.
    moves = [
        sql.SQL(
            "CASE WHEN v.{at} >= r.since AND v.{newest} > v.{at}\n"
            "             THEN v.{at} + (now() - r.since) END"
        ).format(at=_I(f"{g.prefix}_observed_at"), newest=_I(f"{g.prefix}_newest_at"))
        for g in recent_groups()
    ]
    return sql.SQL(
        "CREATE VIEW v_person_summary AS\nSELECT {columns},\n    v.{live} AS live_newest_at,\n"
        "    COALESCE(LEAST(\n        {moves}\n    ), 'infinity') AS valid_until\n"
        "FROM v_person_current_state v\n"
        "CROSS JOIN (SELECT roomwatch_recent_since() AS since OFFSET 0) r;"
    ).format(
        columns=_filled([_col("v", c) for c in SUMMARY_VIEW_COLUMNS], "       "),
        live=_I(f"{_LIVE.prefix}_newest_at"),
        moves=_comma(moves, ",\n        "),
    )


def _tuple(alias: str, columns: Sequence[str], indent: str) -> sql.Composable:
    return sql.SQL("({})").format(_filled([_col(alias, c) for c in columns], indent))


def _refresh_summaries() -> sql.Composable:
    columns = SUMMARY_COLUMNS[1:]
    return sql.SQL(
        "-- Recomputes and stores the summaries of `ids`. Planned for the ids of each call: a plan"
        " kept\n-- from a call on nearly empty tables (a new database's first writes) scans whole"
        " tables and\n-- filters them by the id list, which turns quadratic once they fill up.\n"
        "CREATE OR REPLACE FUNCTION roomwatch_refresh_summaries(ids bigint[]) RETURNS void\n"
        "LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$\nBEGIN\n"
        "    -- Lock first, merge after: in READ COMMITTED each statement takes a new snapshot,"
        " so a\n    -- concurrent writer of the same person (which holds these locks until it"
        " commits) is seen\n    -- by the merge below instead of being overwritten by an older"
        " one. Ascending order keeps\n    -- two such writers from deadlocking on these rows.\n"
        "    PERFORM 1 FROM person_summary WHERE person_id = ANY (ids) ORDER BY person_id"
        " FOR UPDATE;\n"
        "    INSERT INTO person_summary AS s\n"
        "    SELECT * FROM v_person_summary WHERE person_id = ANY (ids) ORDER BY person_id\n"
        "    ON CONFLICT (person_id) DO UPDATE SET\n        {assignments}\n"
        "    -- An unchanged row is not rewritten (no dead tuple, no index churn).\n"
        "    WHERE {old}\n          IS DISTINCT FROM\n          {new};\nEND $$;"
    ).format(
        assignments=_filled(
            [sql.SQL("{} = excluded.{}").format(_I(c), _I(c)) for c in columns], " " * 8
        ),
        old=_tuple("s", columns, " " * 11),
        new=_tuple("excluded", columns, " " * 11),
    )


def _summary_after_persons_update() -> sql.Composable:
    copied = {
        column: PERSON_COLUMNS[column]
        for column in SUMMARY_VIEW_COLUMNS
        if column in PERSON_COLUMNS and column != "person_id"
    }
    # The last sighting also counts the live observations that still say online (SEEN_ONLINE).
    online_since = sql.SQL(
        "CROSS JOIN LATERAL (\n        SELECT max(l.{at}) AS at FROM person_source_latest l\n"
        "        WHERE l.person_id = p.person_id AND l.online\n"
        "          AND l.source IN ({sources})) o"
    ).format(
        at=_I(_LIVE.stamp),
        sources=_filled([_L(source) for source in _LIVE.order], " " * 27),
    )
    assigned = {
        column: sql.SQL("GREATEST(p.{}, o.at)").format(_I(value))
        if column == SEEN_ONLINE
        else sql.SQL("p.{}").format(_I(value))
        for column, value in copied.items()
    }
    return sql.SQL(
        "-- A changed persons row carries only columns the summary copies as they are, but the"
        " last\n-- sighting, which also counts the live observations that still say online:"
        " no merge needed.\n"
        "-- EXECUTE: planned for each call's transition table. A plan kept from a first call on"
        " small\n-- tables joined them by nested loops, and 20,000 changed persons (a followers"
        " list's\n-- import) then took 100 s instead of half a second.\n"
        "CREATE OR REPLACE FUNCTION roomwatch_summary_after_persons_update() RETURNS trigger\n"
        "LANGUAGE plpgsql AS $$\nBEGIN\n"
        "    EXECUTE $q$\n"
        "    SELECT 1 FROM person_summary\n"
        "    WHERE person_id IN (SELECT person_id FROM new_rows) ORDER BY person_id FOR UPDATE\n"
        "    $q$;\n"
        "    EXECUTE $q$\n"
        "    UPDATE person_summary s\n    SET {assignments}\n    FROM persons p\n    {online}\n"
        "    WHERE p.person_id = s.person_id AND p.person_id IN (SELECT person_id FROM new_rows)\n"
        "      AND {old}\n          IS DISTINCT FROM\n          {new}\n    $q$;\n"
        "    PERFORM pg_notify('roomwatch_persons', '');\n    RETURN NULL;\nEND $$;"
    ).format(
        assignments=_filled(
            [sql.SQL("{} = {}").format(_I(s), value) for s, value in assigned.items()], " " * 8
        ),
        online=online_since,
        old=_tuple("s", list(copied), " " * 11),
        new=sql.SQL("({})").format(_filled(list(assigned.values()), " " * 11)),
    )


def _summary_after_persons_insert() -> sql.Composable:
    copied = {
        column: PERSON_COLUMNS[column]
        for column in SUMMARY_VIEW_COLUMNS
        if column in PERSON_COLUMNS
    }
    return sql.SQL(
        "-- A new person has no source rows yet, so its merge is known without the view: every"
        " merged\n-- column null, the persons columns as they are, valid for ever. DO NOTHING: a"
        " row already there\n-- was merged by the view (a source row written in the same"
        " statement).\n"
        "CREATE OR REPLACE FUNCTION roomwatch_summary_after_persons_insert() RETURNS trigger\n"
        "LANGUAGE plpgsql AS $$\nBEGIN\n"
        "    INSERT INTO person_summary ({columns}, valid_until)\n"
        "    SELECT {values}, 'infinity'\n"
        "    FROM changed_rows p ORDER BY p.person_id\n"
        "    ON CONFLICT (person_id) DO NOTHING;\n"
        "    PERFORM pg_notify('roomwatch_persons', '');\n    RETURN NULL;\nEND $$;"
    ).format(
        columns=_filled([_I(c) for c in copied], " " * 32),
        values=_filled([_col("p", c) for c in copied.values()], " " * 11),
    )


def generated_sql() -> str:
    """The generated block of a migration, markers included: the source check of
    person_source_latest, both views (dropped first: a changed rule may change their columns)
    and the functions that list the summary's columns."""
    parts = [
        sql.SQL(
            "ALTER TABLE person_source_latest\n"
            "    DROP CONSTRAINT IF EXISTS person_source_latest_source_check,\n"
            "    ADD CONSTRAINT person_source_latest_source_check\n"
            "    CHECK (source IN ({}));"
        ).format(_filled([_L(source) for source in sorted(SOURCES)], " " * 21)),
        sql.SQL(
            "DROP VIEW IF EXISTS v_person_summary;\nDROP VIEW IF EXISTS v_person_current_state;"
        ),
        sql.SQL(
            "-- The merged current state. The window's start k.at is fenced with OFFSET 0: pulled"
            " up,\n-- it would be computed once per reference (37 InitPlans per person merged),"
            " not once\n-- per query.\n"
        )
        + _current_state_view(),
        sql.SQL("-- Every person's summary as the merge view gives it now.\n") + _summary_view(),
        _refresh_summaries(),
        _summary_after_persons_update(),
        _summary_after_persons_insert(),
    ]
    body = "\n\n".join(part.as_string(None) for part in parts)
    return f"{BEGIN}\n{body}\n{END}\n"


# -- Migrations -----------------------------------------------------------------------------

_MIGRATION = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n", re.DOTALL)

# After a new block: the rows that depend on the views, recomputed (the person_summary
# triggers keep person_tag_followers).
_REFRESH = (
    "-- What depends on the merge, recomputed under the rules above.\n"
    "SELECT roomwatch_refresh_summaries(ARRAY(SELECT person_id FROM persons));\n"
)


def committed_block(migrations: dict[str, str]) -> tuple[str, str] | None:
    """The newest generated block among ``migrations`` (file name -> text), with its file."""
    for name in sorted(migrations, reverse=True):
        found = _BLOCK.search(migrations[name])
        if found:
            return name, found.group(0)
    return None


def bundled_sql() -> dict[str, str]:
    """The migration files shipped in ``storage/migrations`` (name -> text)."""
    return {
        entry.name: entry.read_text("utf-8")
        for entry in resources.files("storage.migrations").iterdir()
        if _MIGRATION.match(entry.name)
    }


def new_migration(directory: Path, name: str) -> Path:
    """Writes the next numbered migration: the regenerated block and the refresh after it."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"{name!r}: a migration name is lower-case letters, digits and _")
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := _MIGRATION.match(p.name))]
    path = directory / f"{max(numbers, default=0) + 1:04d}_{name}.sql"
    path.write_text(
        "-- The merge rules changed (storage/merge_rules.py): the views and the summary\n"
        "-- functions regenerated, then every summary recomputed under them.\n\n"
        + generated_sql()
        + "\n"
        + _REFRESH,
        "utf-8",
    )
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m storage.merge_rules (show | new-migration NAME)``."""
    parser = argparse.ArgumentParser(prog="python -m storage.merge_rules", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="print the generated SQL")
    new = commands.add_parser("new-migration", help="write storage/migrations/NNNN_NAME.sql")
    new.add_argument("name")
    args = parser.parse_args(argv)
    if args.command == "show":
        sys.stdout.write(generated_sql())
        return 0
    directory = Path(__file__).with_name("migrations")
    print(new_migration(directory, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
