"""CSV and JSON bodies of the exports, written a batch of rows at a time.

CSV: a header row of the field names, then one line per row, quoted as RFC 4180 says (fields
with a comma, quote or line break in double quotes, quotes doubled, CRLF line ends). Empty
cells are nulls; booleans ``true``/``false``; times ISO 8601 with their offset; a list (tags)
its items joined by single spaces. Display names, subjects and tags are typed by broadcasters,
and a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return, which some read past) as a formula: such a text cell is written with a single
quote in front (``'=HYPERLINK(...)``), which spreadsheets show as text. Only text cells are
touched, never numbers.

JSON: one array of objects, the same fields as the API's list rows, opened before the first
batch and closed after the last.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import msgspec

ExportFormat = Literal["csv", "json"]
# Litestar adds "; charset=utf-8" to text types itself.
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "json": "application/json"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """One CSV cell: nulls empty, text neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        value = " ".join(map(str, value))
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    return str(value)


def _csv_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # QUOTE_MINIMAL: RFC 4180's quoting
    writer.writerows([csv_text(value) for value in row] for row in rows)
    return out.getvalue().encode()


async def csv_body(
    fields: Sequence[str],
    batches: AsyncIterator[Sequence[msgspec.Struct]],
) -> AsyncIterator[bytes]:
    """A CSV document: the header, then each batch's rows as they come."""
    yield _csv_lines([fields])
    async for rows in batches:
        yield _csv_lines([msgspec.structs.astuple(row) for row in rows])


async def json_body(batches: AsyncIterator[Sequence[msgspec.Struct]]) -> AsyncIterator[bytes]:
    """A JSON array of the rows, a batch at a time."""
    opened = False
    async for rows in batches:
        if not rows:
            continue
        # A batch encoded as one array, its brackets swapped for the document's own.
        yield (b"," if opened else b"[") + msgspec.json.encode(rows)[1:-1]
        opened = True
    yield b"]" if opened else b"[]"


def body(
    export_format: ExportFormat,
    fields: Sequence[str],
    batches: AsyncIterator[Sequence[msgspec.Struct]],
) -> AsyncIterator[bytes]:
    """The body of ``batches`` in ``export_format``."""
    if export_format == "csv":
        return csv_body(fields, batches)
    return json_body(batches)
