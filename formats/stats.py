"""The owner's Stats API (FORMATS.md §6.2): one answer decoded into a :class:`RoomStatsRow`.

``GET /statsapi/?username=<u>&token=<t>`` answers one JSON object about the token's own
account: follower count, viewers, token balance, votes, last broadcast, time online. The site
refreshes it every 5 minutes. ``-1`` means "not broadcasting / unknown": every numeric field
and ``last_broadcast`` (an ISO datetime, or ``-1``) read as None then, and so does ``null``.
A field missing from the answer is unknown too, but for ``username`` and ``num_followers``,
without which the answer is no Stats API answer. Unknown fields are allowed (and kept in
``raw``). A body that does not match fails with a :class:`~roomwatch.errors.DecodeError`
naming the field. The spider is ``spiders/room_stats.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import msgspec

from formats.cbhours import decode_error
from roomwatch.errors import DecodeError
from roomwatch.text import clean_json
from storage.records import RoomStatsRow

UNKNOWN = -1
"""What the Stats API sends for a value it does not have (not broadcasting)."""

# -1 ("unknown") or a count the integer columns of room_stats hold.
_Count = Annotated[int, msgspec.Meta(ge=UNKNOWN, le=2**31 - 1)]


class _Answer(msgspec.Struct):
    """The answer as sent; unknown fields are allowed (the raw object is kept)."""

    username: str
    num_followers: _Count | None
    num_viewers: _Count | None = None
    num_registered_viewers: _Count | None = None
    num_tokened_viewers: _Count | None = None
    token_balance: _Count | None = None
    tips_in_last_hour: _Count | None = None
    votes_up: _Count | None = None
    votes_down: _Count | None = None
    satisfaction_score: _Count | None = None
    last_broadcast: str | int | None = None
    time_online: _Count | None = None


_answer = msgspec.json.Decoder(_Answer)
_MISSING = re.compile(r"Object missing required field `(\w+)`")
_COUNTS = (
    "num_followers",
    "num_viewers",
    "num_registered_viewers",
    "num_tokened_viewers",
    "token_balance",
    "tips_in_last_hour",
    "votes_up",
    "votes_down",
    "satisfaction_score",
    "time_online",
)


def decode_stats(body: bytes) -> RoomStatsRow:
    """Decodes one Stats API answer.

    Raises:
        DecodeError: the body is not JSON, not an object, or a field has the wrong type or
            value; the message names the field (``num_followers: expected `int`, got `str```).
    """
    body = clean_json(body)
    try:
        wire = _answer.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        missing = _MISSING.match(str(exc))
        if missing:  # msgspec names the object ($), the field only in its message
            raise DecodeError(f"{missing[1]}: missing from the answer") from None
        raise decode_error(exc) from None
    username = wire.username.strip().lower()
    if not username:
        raise DecodeError("username: expected a non-empty string")
    counts = {name: _known(getattr(wire, name)) for name in _COUNTS}
    return RoomStatsRow(
        username=username,
        last_broadcast=_moment(wire.last_broadcast),
        raw=body,
        **counts,
    )


def _known(value: int | None) -> int | None:
    return None if value is None or value == UNKNOWN else value


def _moment(value: str | int | None) -> dt.datetime | None:
    """``last_broadcast``: an ISO datetime (UTC when it names no zone), or -1 / null."""
    if value is None or value == UNKNOWN:
        return None
    if isinstance(value, int):
        raise DecodeError(f"last_broadcast: expected an ISO datetime or -1, got {value}")
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise DecodeError(
            f"last_broadcast: expected an ISO datetime or -1, got {value[:40]!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
