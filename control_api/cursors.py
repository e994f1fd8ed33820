"""Opaque pagination cursors: the keyset position of the last row of a page, base64-encoded.

A cursor is URL-safe base64 (no padding) of a JSON array ``[kind, value, id]``: ``kind`` is the
list and sort it belongs to (``persons:followers``, ``follow-events``), ``value`` the sort key of
the last row, ``id`` its tie-breaker (a row id, or a text key such as a room event's id).
Clients must treat it as opaque; a cursor from another list or sort, or one that is not ours,
is a 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TypeVar

import msgspec

from roomwatch.errors import InvalidInput

CursorValue = int | dt.datetime | None
V = TypeVar("V", int, dt.datetime)
K = TypeVar("K", int, str)

_DECODER = msgspec.json.Decoder(tuple[str, CursorValue, int | str])


def encode_cursor(kind: str, value: CursorValue, row_id: int | str) -> str:
    """The cursor that resumes after the row with this sort value and id."""
    return base64.urlsafe_b64encode(msgspec.json.encode((kind, value, row_id))).decode().rstrip("=")


def decode_cursor(token: str, kind: str, value_type: type[V]) -> tuple[V | None, int]:
    """``(value, id)`` of a cursor issued for ``kind`` with a row id; see :func:`decode_key`."""
    return decode_key(token, kind, value_type, int)


def decode_key(token: str, kind: str, value_type: type[V], key_type: type[K]) -> tuple[V | None, K]:
    """``(value, id)`` of a cursor issued for ``kind``; raises a 400 naming ``cursor`` otherwise.

    Args:
        token: the cursor as the client sent it.
        kind: the list and sort the request is for.
        value_type: what the sort key of that list is (``None`` is always allowed: NULLS LAST).
        key_type: what its tie-breaker is (a row id, or a text key).
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_kind, value, row_id = _DECODER.decode(raw)
    except (ValueError, msgspec.DecodeError):  # binascii.Error is a ValueError
        raise InvalidInput("cursor", "not a cursor this API issued", source="query") from None
    if got_kind != kind:
        raise InvalidInput(
            "cursor", f"this cursor belongs to {got_kind!r}, not to {kind!r}", source="query"
        )
    if not isinstance(row_id, key_type) or isinstance(row_id, bool):
        raise InvalidInput("cursor", "not a cursor this API issued", source="query")
    if value is None:
        return None, row_id
    if not isinstance(value, value_type):
        raise InvalidInput("cursor", "not a cursor this API issued", source="query")
    return value, row_id
