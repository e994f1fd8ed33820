"""Items of the logged-in crawls: a session's probe result, list observations, a complete list.

The storage pipeline writes them (spiders never hold a connection). Observations are written
whatever happens later in the crawl; :class:`CompleteList` is the crawl's conclusion, which the
pipeline stores only when the crawl ended without a failure, and which alone changes follow
state (``storage/follow_state.py``). A conclusion the mass-change guard holds raises
:class:`~roomwatch.errors.FollowLossHeld`, saying how to confirm; the pipeline fails the job
with it (``storage/alerts.py`` then raises an alert).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from roomwatch.config import FollowConfig
from roomwatch.errors import FollowLossHeld
from sessions.store import record_status
from storage.follow_state import FollowSource, Relation, reconcile
from storage.follow_state import record_observations as write_observations
from storage.login_sessions import Status
from storage.records import RoomObservation

if TYPE_CHECKING:
    import psycopg


class SessionChecked(msgspec.Struct, frozen=True):
    """The logged-in probe's decision about the crawl's session (valid or expired)."""

    kind: ClassVar[str] = "session_checks"
    session_id: int
    status: Status

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> int:
        record_status(conn, self.session_id, self.status)
        return 1


class ListObservations(msgspec.Struct, frozen=True):
    """What one or more pages of a list showed, stored under the list's source."""

    kind: ClassVar[str] = "list_rows"
    batch_rows: ClassVar[int] = 1000
    observations: list[RoomObservation]
    source: FollowSource
    observed_at: dt.datetime

    @property
    def rows(self) -> int:
        return len(self.observations)

    def merge(self, other: ListObservations) -> ListObservations:
        return msgspec.structs.replace(self, observations=self.observations + other.observations)

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> int:
        return write_observations(
            conn, self.observations, source=self.source, observed_at=self.observed_at
        )


class FollowedRooms(ListObservations, frozen=True):
    """Rows of the followed-cams lists."""

    kind: ClassVar[str] = "followed_rooms"


class Followers(ListObservations, frozen=True):
    """Names of the followers pages."""

    kind: ClassVar[str] = "followers"


class CompleteList(msgspec.Struct, frozen=True):
    """A list proved complete: the relation is set from it (and follow events written).

    ``limits`` and ``confirm_loss`` are the mass-change guard's (``follow`` settings, the
    crawl's ``-a confirm_loss=true``).
    """

    kind: ClassVar[str] = "complete_lists"
    relation: Relation
    usernames: list[str]
    source: FollowSource
    observed_at: dt.datetime
    limits: FollowConfig = msgspec.field(default_factory=FollowConfig)
    confirm_loss: bool = False

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> int:
        try:
            reconcile(
                conn,
                self.relation,
                self.usernames,
                checked_at=self.observed_at,
                source=self.source,
                job_id=job_id,
                limits=self.limits,
                confirm_loss=self.confirm_loss,
            )
        except FollowLossHeld as exc:
            # The source of a crawl's list is its spider's name.
            raise FollowLossHeld(
                f"{exc}; run `roomwatch crawl {self.source} -a confirm_loss=true` to confirm"
            ) from None
        return 1
