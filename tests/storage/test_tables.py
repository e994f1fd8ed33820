"""Table declarations: they name exactly the columns the migrations created, in their types."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from storage.tables import (
    AFFILIATE_SNAPSHOTS,
    CBHOURS_ACTIVITY,
    CBHOURS_DAILY,
    CBHOURS_LIVE,
    LIST_ROWS,
    ROOM_STATS,
    Table,
    upsert_latest,
)

# A staging column may be wider than the table's (the table refuses what does not fit).
_WIDER = {("integer", "smallint")}


def _columns(db: psycopg.Connection[Any], table: str) -> dict[str, str]:
    rows = db.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [table],
    ).fetchall()
    return dict(rows)


def _fits(db: psycopg.Connection[Any], declared: str, stored: str) -> bool:
    row = db.execute("SELECT %s::regtype::text", [declared]).fetchone()
    assert row is not None
    return row[0] == stored or (row[0], stored) in _WIDER


@pytest.mark.parametrize(
    "table",
    [
        AFFILIATE_SNAPSHOTS,
        CBHOURS_LIVE.table,
        CBHOURS_ACTIVITY.table,
        CBHOURS_DAILY.table,
        ROOM_STATS,
    ],
    ids=lambda table: table.name,
)
def test_a_history_table_is_declared_column_for_column(
    db: psycopg.Connection[Any], table: Table
) -> None:
    # A record field without its migration (or the reverse) fails here, not in a crawl.
    stored = _columns(db, table.name)
    declared = {column.name: column.type for column in table.columns}
    assert declared.keys() == stored.keys()
    for name, kind in declared.items():
        assert _fits(db, kind, stored[name]), name


def test_the_staging_tables_hold_what_their_tables_hold(db: psycopg.Connection[Any]) -> None:
    for history in (CBHOURS_LIVE, CBHOURS_ACTIVITY, CBHOURS_DAILY):
        db.execute(history.stage.create())
        assert _columns(db, history.stage.name).keys() == {"username"} | {
            column.name for column in history.table.fields
        }
    latest = _columns(db, "person_source_latest")
    for column in LIST_ROWS.fields:  # an observation's field fills the column of its name
        assert _fits(db, column.type, latest[column.name]), column.name


def test_a_latest_row_names_only_columns_the_table_has() -> None:
    with pytest.raises(ValueError, match="person_source_latest has no column viewer"):
        upsert_latest({"person_id": "1", "source": "'x'", "viewer": "1"}, sql.SQL(""))
