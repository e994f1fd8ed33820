"""The ``cbhours_live`` spider: live stats of persons of interest from CBHours ``get_live``.

``action=get_live`` takes up to 50 usernames per request (FORMATS.md §2.2). ``Online`` rows are
stored with rank, grank, viewers, followers, show, subject and tags; ``Offline`` rows carry
their status only. CBHours answers only for models in its trophy database: a name it leaves
out, or an ``Error Code:300`` answer, marks the person as without trophy (with the check time),
so polls skip them until ``cbhours.trophy_recheck_days`` have passed. A request whose answer
does not decode fails (naming the field) and writes nothing; the others are still stored, and
the job ends ``failed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import scrapy
from scrapy.http import Response

from roomwatch.config import Config
from roomwatch.errors import DecodeError, UpstreamError
from roomwatch.text import clean_json
from spiders.cbhours_api import (
    CbhoursSpider,
    NoTrophy,
    decode_error,
    is_no_trophy,
    usernames_arg,
)
from storage.records import CbhoursLive, WriteResult, gender_code
from storage.targets import cbhours_live_targets
from storage.writers import write_cbhours_live

if TYPE_CHECKING:
    import psycopg

BATCH_SIZE = 50  # the API's limit per get_live request


class _Online(msgspec.Struct, tag_field="room_status", tag="Online"):
    """A model on cam; unknown fields are allowed (the raw row is kept)."""

    rank: int
    grank: int
    viewers: int
    followers: int
    current_show: str
    room_subject: str
    tags: list[str]
    gender: str | None = None
    is_new: bool | None = None


class _Offline(msgspec.Struct, tag_field="room_status", tag="Offline"):
    """A model off cam: the status is all CBHours says."""


class _Answer(msgspec.Struct):
    """Either ``{"server_status", "data"}`` or the error answer ``{"status", "message"}``.

    ``data`` may be ``[]``: PHP's ``json_encode`` writes an empty map as an empty array.
    """

    server_status: str | None = None
    data: dict[str, msgspec.Raw] | list[msgspec.Raw] | None = None
    status: str | bool | None = None
    message: str | None = None


_answer = msgspec.json.Decoder(_Answer)
_row = msgspec.json.Decoder(_Online | _Offline)


class LiveAnswer(msgspec.Struct, frozen=True):
    """One decoded ``get_live`` answer.

    Attributes:
        rows: the models CBHours answered for (lowercase usernames).
        no_trophy: the answer was Error Code:300 (none of the names is in the trophy database).
    """

    rows: list[CbhoursLive]
    no_trophy: bool = False


def decode_live(body: bytes) -> LiveAnswer:
    """Decodes one ``get_live`` answer strictly.

    Raises:
        DecodeError: naming the model and field that do not match the documented format.
        UpstreamError: an error answer other than Error Code:300.
    """
    try:
        answer = _answer.decode(clean_json(body))  # no NUL or lone surrogate reaches a row
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise decode_error(exc) from None
    if answer.status == "error":
        if is_no_trophy(answer.message):
            return LiveAnswer(rows=[], no_trophy=True)
        raise UpstreamError(f"error answer: {answer.message or '(no message)'}")
    if answer.data is None:
        raise DecodeError("data: object missing required field")
    if isinstance(answer.data, list):
        if answer.data:
            raise DecodeError("data: expected `object`, got `array`")
        return LiveAnswer(rows=[])
    rows = []
    for name, raw in answer.data.items():
        try:
            wire = _row.decode(raw)
        except msgspec.ValidationError as exc:
            raise decode_error(exc, f"data.{name}") from None
        rows.append(_to_record(name.lower(), wire, bytes(raw)))
    return LiveAnswer(rows=rows)


def _to_record(username: str, wire: _Online | _Offline, raw: bytes) -> CbhoursLive:
    if isinstance(wire, _Offline):
        return CbhoursLive(username=username, room_status="Offline", raw=raw)
    return CbhoursLive(
        username=username,
        room_status="Online",
        gender=gender_code(wire.gender) if wire.gender else None,
        rank=wire.rank,
        grank=wire.grank,
        viewers=wire.viewers,
        followers=wire.followers,
        current_show=wire.current_show,
        room_subject=wire.room_subject,
        tags=[tag.lower() for tag in wire.tags],
        is_new=wire.is_new,
        raw=raw,
    )


class CbhoursLivePage(msgspec.Struct, frozen=True):
    """The rows of one ``get_live`` answer, stored in one transaction."""

    kind: ClassVar[str] = "cbhours_live"
    rows: list[CbhoursLive]
    observed_at: dt.datetime

    def __repr__(self) -> str:
        # Scrapy logs every item; one short line, not every row, keeps the job log readable.
        online = sum(1 for row in self.rows if row.online)
        return f"CbhoursLivePage({len(self.rows)} rows, {online} online)"

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> WriteResult:
        return write_cbhours_live(conn, self.rows, observed_at=self.observed_at, job_id=job_id)


class CbhoursLiveSpider(CbhoursSpider):
    """One refresh of the live stats of every CBHours target, 50 names per request.

    Arguments (``-a``): ``usernames=a,b`` asks about exactly these persons instead.
    """

    name = "cbhours_live"

    def __init__(self, *args: Any, targets: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets: list[str] = targets or []

    @classmethod
    def prepare(
        cls, conn: psycopg.Connection[Any], config: Config, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The persons to ask about: ``usernames``, else the targets (``storage/targets.py``)."""
        names = usernames_arg(args, "usernames")
        if names is None:
            settings = config.cbhours
            names = cbhours_live_targets(conn, settings.targets, settings.trophy_recheck_days)
        return {"targets": names}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not self.targets:
            self.logger.info("no CBHours targets: nobody of interest has or may have a trophy")
        for number, first in enumerate(range(0, len(self.targets), BATCH_SIZE), start=1):
            batch = self.targets[first : first + BATCH_SIZE]
            yield self.api_request(
                [("action", "get_live"), ("usernames", ",".join(batch))],
                self.parse_live,
                f"get_live batch {number}",
                names=batch,
            )

    def parse_live(self, response: Response, names: list[str]) -> Iterator[Any]:
        try:
            answer = decode_live(response.body)
        except UpstreamError as exc:
            self.fail(f"{response.meta['what']}: {exc}")
            return
        self.crawler.stats.inc_value("roomwatch/pages")
        if answer.rows:
            yield CbhoursLivePage(rows=answer.rows, observed_at=self.observed_at)
        answered = {row.username for row in answer.rows}
        unknown = [name for name in names if name not in answered]
        if unknown:
            yield NoTrophy(usernames=unknown, checked_at=self.observed_at)
