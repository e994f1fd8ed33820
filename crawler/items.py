"""What spiders yield: plain data, frozen msgspec Structs that know nothing of storage.

The storage pipeline (``crawler/pipelines.py``) keeps them: it maps each item type to its
writer, hands the writer a connection in a worker thread (spiders never open one), and merges
small :class:`Batchable` items of one type into bigger writes. A spider's ``conclusion`` is one
of these items too, stored only after a crawl that finished without a failure.

Scrapy recognises items through ``itemadapter``; :class:`StructAdapter` teaches it msgspec
Structs (read-only, as our items are frozen).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, KeysView
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec
from itemadapter.adapter import AdapterInterface, ItemAdapter

from roomwatch.config import FollowConfig
from storage.follow_state import CountCheck, FollowSource, Relation
from storage.images import Thumbnail
from storage.login_sessions import Status
from storage.records import (
    ActivitySegment,
    AffiliateRoom,
    CbhoursLive,
    DailyActivity,
    RoomEvent,
    RoomObservation,
    RoomStatsRow,
)


@runtime_checkable
class Batchable(Protocol):
    """An item the storage pipeline may merge with the next one of its type before writing.

    Attributes:
        batch_rows: the pipeline writes once a merged item holds at least this many rows.
    """

    batch_rows: ClassVar[int]

    @property
    def rows(self) -> int:
        """Rows the item holds now."""
        ...

    def merge(self, other: Any) -> Batchable:
        """This item and ``other`` (same type) as one."""
        ...


@runtime_checkable
class Streamed(Protocol):
    """An item of a stream that carries its position (the Events API's pages): the storage
    pipeline writes it as soon as it arrives, one write at a time, in arrival order, and
    writes no later one once a write failed (the position must not pass events not stored).
    Items that arrived while a write ran are joined into the next write."""

    def then(self, later: Any) -> Streamed:
        """This item followed by ``later`` (same type) as one: the position is ``later``'s."""
        ...


# The Affiliate API (FORMATS.md §1; spiders/affiliate.py).


class AffiliatePage(msgspec.Struct, frozen=True):
    """The rooms of one or more good pages of one poll, stored in one transaction."""

    batch_rows: ClassVar[int] = 2500
    rooms: list[AffiliateRoom]
    observed_at: dt.datetime

    @property
    def rows(self) -> int:
        return len(self.rooms)

    def merge(self, other: AffiliatePage) -> AffiliatePage:
        return AffiliatePage(rooms=self.rooms + other.rooms, observed_at=self.observed_at)


class AffiliatePollComplete(msgspec.Struct, frozen=True):
    """Every page was read: the poll may conclude who went offline.

    ``seen`` names every room the poll listed, so a room whose row was set aside (refused by
    the database) is not concluded offline while everyone absent still is.
    """

    observed_at: dt.datetime
    rooms_seen: int
    seen: list[str] = msgspec.field(default_factory=list)


class ThumbnailItem(msgspec.Struct, frozen=True):
    """A person's thumbnail to download; the images pipeline replaces it with the stored one."""

    username: str
    url: str


class StoredThumbnails(msgspec.Struct, frozen=True):
    """Downloaded thumbnails to be recorded (one transaction per batch): their files are on
    disk, or, with ``images.store = "database"``, their bytes travel here."""

    batch_rows: ClassVar[int] = 100
    thumbnails: list[Thumbnail]

    def __repr__(self) -> str:
        # Scrapy logs every item; the bytes a batch may carry (up to 100 pictures) stay out.
        return f"StoredThumbnails({', '.join(t.username for t in self.thumbnails)})"

    @property
    def rows(self) -> int:
        return len(self.thumbnails)

    def merge(self, other: StoredThumbnails) -> StoredThumbnails:
        return StoredThumbnails(self.thumbnails + other.thumbnails)


# The CBHours API (FORMATS.md §2; spiders/cbhours_live.py, spiders/cbhours_activity.py).


class CbhoursLivePage(msgspec.Struct, frozen=True):
    """The rows of one ``get_live`` answer, stored in one transaction."""

    rows: list[CbhoursLive]
    observed_at: dt.datetime

    def __repr__(self) -> str:
        # Scrapy logs every item; one short line, not every row, keeps the job log readable.
        online = sum(1 for row in self.rows if row.online)
        return f"CbhoursLivePage({len(self.rows)} rows, {online} online)"


class CbhoursActivityPage(msgspec.Struct, frozen=True):
    """One answer's segments and daily totals, upserted in one transaction."""

    segments: list[ActivitySegment]
    daily: list[DailyActivity]
    observed_at: dt.datetime

    def __repr__(self) -> str:
        # Scrapy logs every item; a 60-day answer holds up to 28,800 segments.
        names = sorted({s.username for s in self.segments} | {d.username for d in self.daily})
        return (
            f"CbhoursActivityPage({', '.join(names)}: {len(self.segments)} segments, "
            f"{len(self.daily)} days)"
        )


class NoTrophy(msgspec.Struct, frozen=True):
    """CBHours does not know these persons (omitted, or Error Code:300): recheck them later."""

    usernames: list[str]
    checked_at: dt.datetime


# The logged-in site (FORMATS.md §3; spiders/followed_cams.py, spiders/followers.py).
#
# Observations are written whatever happens later in the crawl; :class:`CompleteList` is the
# crawl's conclusion, which alone changes follow state (``storage/follow_state.py``).


class SessionChecked(msgspec.Struct, frozen=True):
    """The logged-in probe's decision about the crawl's session (valid or expired)."""

    session_id: int
    status: Status


class ListObservations(msgspec.Struct, frozen=True):
    """What one or more pages of a list showed, stored under the list's source."""

    batch_rows: ClassVar[int] = 1000
    observations: list[RoomObservation]
    source: FollowSource
    observed_at: dt.datetime

    @property
    def rows(self) -> int:
        return len(self.observations)

    def merge(self, other: ListObservations) -> ListObservations:
        return msgspec.structs.replace(self, observations=self.observations + other.observations)


class FollowedRooms(ListObservations, frozen=True):
    """Rows of the followed-cams lists."""


class Followers(ListObservations, frozen=True):
    """Names of the followers pages."""


class CompleteList(msgspec.Struct, frozen=True):
    """A list proved complete: the relation is set from it (and follow events written).

    ``limits`` and ``confirm_loss`` are the mass-change guard's (``follow`` settings, the
    crawl's ``-a confirm_loss=true``); a conclusion the guard holds fails the job saying how
    to confirm (``storage/alerts.py`` then raises an alert). ``count_check``: the pages showed
    no count, so the list is complete only if the Stats API's follower count matches it,
    compared as the conclusion is stored; otherwise the job fails saying why. ``account``: whose
    list it is (the login session's account, as the page header shows it).
    """

    relation: Relation
    usernames: list[str]
    source: FollowSource
    observed_at: dt.datetime
    limits: FollowConfig = msgspec.field(default_factory=FollowConfig)
    confirm_loss: bool = False
    count_check: CountCheck | None = None
    account: str = ""


# The owner's room (FORMATS.md §6; spiders/room_events.py, spiders/room_stats.py).


class RoomEventsPage(msgspec.Struct, frozen=True):
    """The events of one Events API answer and the stream's position after them, stored in
    one transaction: a restart resumes after ``last_event_id``, never losing or repeating one.
    An answer with no events is not yielded (the position did not move)."""

    account: str
    events: list[RoomEvent]
    last_event_id: str

    def then(self, later: RoomEventsPage) -> RoomEventsPage:
        return RoomEventsPage(self.account, self.events + later.events, later.last_event_id)

    def __repr__(self) -> str:
        # Scrapy logs every item: one short line (event texts are the room's, not the log's).
        return f"RoomEventsPage({self.account}: {len(self.events)} events to {self.last_event_id})"


class RoomStatsAnswer(msgspec.Struct, frozen=True):
    """One Stats API answer, observed at ``observed_at``."""

    row: RoomStatsRow
    observed_at: dt.datetime


class StructAdapter(AdapterInterface):
    """itemadapter support for msgspec Structs (read-only)."""

    @classmethod
    def is_item_class(cls, item_class: type) -> bool:
        return isinstance(item_class, type) and issubclass(item_class, msgspec.Struct)

    def field_names(self) -> KeysView[str]:
        return dict.fromkeys(self.item.__struct_fields__).keys()

    def __getitem__(self, field_name: str) -> Any:
        if field_name in self.item.__struct_fields__:
            return getattr(self.item, field_name)
        raise KeyError(field_name)

    def __setitem__(self, field_name: str, value: Any) -> None:
        raise TypeError(f"{type(self.item).__name__} is frozen")

    def __delitem__(self, field_name: str) -> None:
        raise TypeError(f"{type(self.item).__name__} is frozen")

    def __iter__(self) -> Iterator[str]:
        return iter(self.item.__struct_fields__)

    def __len__(self) -> int:
        return len(self.item.__struct_fields__)

    def get_field_meta(self, field_name: str) -> MappingProxyType[str, Any]:
        return MappingProxyType({})


def register_struct_items() -> None:
    """Makes Scrapy accept msgspec Structs as items (idempotent; called by the crawl process)."""
    classes = ItemAdapter.ADAPTER_CLASSES
    if StructAdapter not in classes:
        classes.appendleft(StructAdapter)  # type: ignore[attr-defined]
