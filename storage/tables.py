"""The tables the writers fill, each declared once; the SQL that moves their rows is composed here.

A table is declared by the record it stores (``storage/records.py``): every field of the record
but ``username`` is a column of the same name, its PostgreSQL type read from the field's type
(:data:`PG_TYPES`). Adding a field to a history table is therefore one line on the record plus
its migration; the staging table, the COPY statement, the row tuples and the ``INSERT ...
SELECT`` below all follow. A writer's row of ``person_source_latest`` is a mapping of column to
expression (:func:`upsert_latest`): the columns a source does not report are NULL without being
spelled out.

The writers trust their records (cleaned where the data came in, as the record types say), so
nothing here cleans a value.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Collection, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
import psycopg
from psycopg import sql

from storage.latest import COLUMNS, upsert_latest_sql
from storage.records import (
    ActivitySegment,
    AffiliateRoom,
    CbhoursLive,
    DailyActivity,
    RoomEvent,
    RoomObservation,
    RoomStatsRow,
)

PG_TYPES: dict[object, str] = {
    str: "text",
    int: "integer",
    bool: "boolean",
    dt.date: "date",
    dt.datetime: "timestamptz",
    list[str]: "text[]",
    bytes: "jsonb",  # a JSON object exactly as received (``raw``)
}
"""How a record field's type is held in PostgreSQL (a staging table's column type)."""


class Column(NamedTuple):
    """One column: its name and PostgreSQL type."""

    name: str
    type: str


def _pg_type(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
    return PG_TYPES[annotation]


def record_columns(record: type[msgspec.Struct], fields: Collection[str] = ()) -> list[Column]:
    """A column per field of ``record`` but ``username`` (only ``fields``, if given)."""
    return [
        Column(f.name, _pg_type(f.type))
        for f in msgspec.structs.fields(record)
        if f.name != "username" and (not fields or f.name in fields)
    ]


class Table:
    """A table (or a temporary staging table) that holds records.

    Its columns are ``keys``, given with each row (``person_id``, the observation time, ...),
    then ``fields``, read from the record by name.
    """

    def __init__(self, name: str, keys: Sequence[Column], fields: Sequence[Column]) -> None:
        plain = [c for c in fields if c.type != "jsonb"]
        json = [c for c in fields if c.type == "jsonb"]
        if len(json) > 1:
            raise ValueError(f"{name}: one JSON column at most (the object as received)")
        self.name = name
        self.keys = tuple(keys)
        self.fields = (*plain, *json)  # the JSON object last: see row()
        self.columns = self.keys + self.fields
        self._read = attrgetter(*(c.name for c in plain))
        self._one = len(plain) == 1
        self._raw = attrgetter(json[0].name) if json else None
        self._arrays = [i for i, c in enumerate(plain) if c.type == "text[]"]

    def staged(self, name: str, keys: Sequence[Column]) -> Table:
        """A staging table for this one: the same fields under other keys."""
        return Table(name, keys, self.fields)

    def row(self, keys: tuple[object, ...], record: Any) -> tuple[object, ...]:
        """One row in the order of :attr:`columns`: ``keys``, then the fields of ``record``.

        A COPY makes a row per record, so this is one C-level read of the plain fields and
        tuple concatenation; the JSON object (the bytes as received) goes in as its text.
        """
        plain = (self._read(record),) if self._one else self._read(record)
        if self._arrays:
            values = list(plain)
            for i in self._arrays:
                if values[i] is not None:
                    values[i] = text_array(values[i])
            plain = tuple(values)
        if self._raw is None:
            return keys + plain
        return keys + plain + (self._raw(record).decode(),)

    def definitions(self) -> sql.Composed:
        """``name type, ...``: the columns as a table definition (or a record set's) lists them."""
        return sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in self.columns
        )

    def create(self) -> sql.Composed:
        """``CREATE TEMP TABLE``: the staging table, gone at the end of the transaction."""
        return sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
            sql.Identifier(self.name), self.definitions()
        )

    def copy(self) -> sql.Composed:
        """``COPY ... FROM STDIN`` of rows made by :meth:`row` (see :meth:`copy_rows`)."""
        return sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.name), names(c.name for c in self.columns)
        )

    def copy_rows(self, conn: psycopg.Connection[Any], rows: Iterable[tuple[object, ...]]) -> None:
        """Copies ``rows`` (made by :meth:`row`) into the table."""
        with conn.cursor().copy(self.copy()) as copy:
            for row in rows:
                copy.write_row(row)

    def drop(self) -> sql.Composed:
        return sql.SQL("DROP TABLE {}").format(sql.Identifier(self.name))

    def insert_row(self, unique: Sequence[str]) -> sql.Composed:
        """``INSERT`` of one row made by :meth:`row` (positional parameters, each cast to its
        column's type), kept as it is when a row with the same ``unique`` columns exists."""
        return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING").format(
            sql.Identifier(self.name),
            names(c.name for c in self.columns),
            sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(c.type)) for c in self.columns),
            names(unique),
        )


def text_array(values: Iterable[str]) -> str:
    """A ``text[]`` literal (``{"a","b"}``) of ``values``, each quoted.

    A row carries its tags so, not as a list: psycopg's own text encoding of a list checks each
    element with a regular expression, which made the tags half of the Affiliate stage COPY. (Its
    binary encoding is as fast, but its binary integers wrap around silently: 2**31 arrives as
    -2**31.)
    """
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def names(columns: Iterable[str], prefix: str | None = None) -> sql.Composed:
    """``a, b, c`` (``prefix.a, ...`` with a prefix) as identifiers."""
    return sql.SQL(", ").join(sql.Identifier(*((prefix, c) if prefix else (c,))) for c in columns)


PERSON = Column("person_id", "bigint")
USERNAME = Column("username", "text")
_OBSERVED = (PERSON, Column("observed_at", "timestamptz"), Column("job_id", "bigint"))

AFFILIATE_SNAPSHOTS = Table("affiliate_api_snapshots", _OBSERVED, record_columns(AffiliateRoom))
"""Every room of every poll, as the feed sent it (copied straight into the table)."""

ROOM_STATS = Table(
    "room_stats",
    (Column("account", "text"), Column("observed_at", "timestamptz"), Column("job_id", "bigint")),
    record_columns(RoomStatsRow),
)
"""Every Stats API answer (the record's ``username`` is the ``account``), one row per time."""

ROOM_EVENTS = Table(
    "room_events",
    (Column("account", "text"), Column("job_id", "bigint")),
    [USERNAME, *record_columns(RoomEvent)],
)
"""The owner's room events (``storage/room_events.py``): the record's every field, by account."""

ROOM_EVENTS_STAGE = ROOM_EVENTS.staged("room_events_stage", (Column("ord", "integer"),))
"""A page's events in stream order (``ord``); account and job are the insert's parameters."""

LIST_ROWS = Table("list_rows", (USERNAME,), record_columns(RoomObservation))
"""What a followed-cams list or a followers page showed (a JSON parameter's record set)."""


class History:
    """A history table the CBHours writers fill through a staging table.

    Attributes:
        table: the table; its keys are ``person_id, observed_at, job_id``.
        stage: the staging table: the same fields by ``username`` (persons are not known yet).
        insert: moves the staged rows in, with the parameters ``t`` (observed) and ``job``; one
            row per person and ``unique``; its row count is the rows new or changed.
    """

    def __init__(self, table: Table, unique: tuple[str, ...], *, replace: bool) -> None:
        """
        Args:
            unique: with ``person_id``, what identifies a row (its primary key).
            replace: a row already stored is replaced when a field changed (else it is kept).
        """
        self.table = table
        self.stage = table.staged(f"{table.name}_stage", (USERNAME,))
        fields = [c.name for c in table.fields]
        staged_keys = [k for k in unique if k in fields]
        changing = [f for f in fields if f not in unique]
        self.insert = sql.SQL(
            "INSERT INTO {table} AS h (person_id, observed_at, job_id, {fields}) "
            "SELECT {distinct} p.person_id, %(t)s, %(job)s, {staged} "
            "FROM {stage} s JOIN persons p ON p.username = s.username "
            "ON CONFLICT (person_id, {unique}) "
        ).format(
            table=sql.Identifier(table.name),
            fields=names(fields),
            distinct=sql.SQL("DISTINCT ON (p.person_id, {})").format(names(staged_keys, "s"))
            if staged_keys
            else sql.SQL(""),
            staged=names(fields, "s"),
            stage=sql.Identifier(self.stage.name),
            unique=names(unique),
        )
        if not replace:
            self.insert += sql.SQL("DO NOTHING")
            return
        self.insert += sql.SQL("DO UPDATE SET {set} WHERE ({old}) IS DISTINCT FROM ({new})").format(
            set=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name))
                for name in (*changing, "observed_at", "job_id")
            ),
            old=names(changing, "h"),
            new=names(changing, "excluded"),
        )


CBHOURS_LIVE = History(
    Table("cbhours_live_stats", _OBSERVED, record_columns(CbhoursLive)),
    ("observed_at",),
    replace=False,
)
CBHOURS_ACTIVITY = History(
    Table("cbhours_activity", _OBSERVED, record_columns(ActivitySegment)),
    ("segment_at",),
    replace=True,
)
CBHOURS_DAILY = History(
    Table("cbhours_daily_activity", _OBSERVED, record_columns(DailyActivity)),
    ("day",),
    replace=True,
)


def upsert_latest(values: Mapping[str, str], rows: sql.Composable) -> sql.Composed:
    """The ``person_source_latest`` upsert (``storage/latest.py``) of one source's rows.

    Args:
        values: SQL expression by column: ``person_id``, ``source`` and the columns of
            :data:`storage.latest.COLUMNS` the source reports (a group's value columns and its
            time); every other column is NULL.
        rows: the rest of the SELECT: ``FROM ...``, and a ``WHERE`` if need be.

    Raises:
        ValueError: a column that ``person_source_latest`` does not have.
    """
    unknown = values.keys() - {"person_id", "source", *COLUMNS}
    if unknown:
        raise ValueError(f"person_source_latest has no column {', '.join(sorted(unknown))}")
    select = sql.SQL("SELECT {} {}").format(
        sql.SQL(", ").join(
            sql.SQL(values.get(column, "NULL")) for column in ("person_id", "source", *COLUMNS)
        ),
        rows,
    )
    return upsert_latest_sql(select)


def shown(expression: str) -> str:
    """The observation time (parameter ``t``) if ``expression`` is not NULL: a group's time
    when the source reported something of it."""
    return f"CASE WHEN {expression} IS NOT NULL THEN %(t)s::timestamptz END"
