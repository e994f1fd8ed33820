"""The one exceptions module: every error roomwatch raises on purpose lives here.

Hierarchy::

    RoomwatchError                 base; its message is one line meant for the user
    ├── ConfigError                a setting is missing or has the wrong type or value
    ├── DatabaseError              the database could not be reached, started or used
    │   ├── EmbeddedDatabaseError  the embedded PostgreSQL could not be set up or started
    │   └── MigrationError         a migration file failed; the database is as it was before it
    ├── UpstreamError              an upstream answered something we cannot use
    │   └── DecodeError            a response did not match the documented format (names the field)
    │       ├── PageError          an Affiliate feed page did (its room and field)
    │       └── RoomListError      a logged-in room-list API answer did
    ├── SessionError               a login session is missing, invalid or expired
    ├── JobError                   a crawl job request cannot be honoured (unknown spider, conflict)
    │   └── JobConflict            one of that spider is already queued or running (``existing``)
    ├── ScheduleError              a schedule change is invalid (names the field)
    ├── UsernameError              a name given for the watch list cannot be a username
    ├── HtmlImportError            a saved page offered for import cannot be used (names the file)
    │   ├── HtmlTooLargeError      it is over the byte or element limit (the API answers 413)
    │   └── SavedAtError           its saved time is unusable (future); ``stale``: older than
    │                              the list's last check (it would roll follow state back)
    └── FollowLossHeld             a complete follow list would remove more people than
                                   ``follow.max_loss_share`` allows: held until confirmed

Errors surface once, at the edge that owns the user: the CLI prints ``str(error)`` and exits
non-zero, the API answers RFC 9457 problem details, a crawl job records ``failed`` with it.
"""

from __future__ import annotations


class RoomwatchError(Exception):
    """Base class; ``str(error)`` is a single line fit to show a user."""


class ConfigError(RoomwatchError):
    """A setting is missing or invalid. The message names the key and what was expected."""


class DatabaseError(RoomwatchError):
    """The database could not be reached, started or used."""


class EmbeddedDatabaseError(DatabaseError):
    """The embedded PostgreSQL server could not be prepared or started."""


class MigrationError(DatabaseError):
    """A migration failed and was rolled back; the message names the file."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"migration {filename} failed: {reason}")
        self.filename = filename


class UpstreamError(RoomwatchError):
    """An upstream site or API answered something we cannot use."""


class DecodeError(UpstreamError):
    """A response body did not match the documented format."""


class PageError(DecodeError):
    """An Affiliate feed page that does not match the documented format; the message names the
    room and field."""


class RoomListError(DecodeError):
    """A room-list answer that does not match the format; the message names the field."""


class SessionError(RoomwatchError):
    """A login session is missing, invalid or expired."""


class JobError(RoomwatchError):
    """A crawl job request cannot be honoured."""


class JobConflict(JobError):
    """A job of that spider is already queued or running; ``existing`` is its id."""

    def __init__(self, spider: str, existing: int) -> None:
        super().__init__(f"a {spider} job is already queued or running (#{existing})")
        self.existing = existing


class ScheduleError(RoomwatchError):
    """A schedule change was refused; ``field`` is the field that was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class UsernameError(RoomwatchError):
    """A name given for the watch list cannot be a username; the message quotes it."""


class HtmlImportError(RoomwatchError):
    """A saved followed-cams or followers page cannot be imported; the message names the file."""


class HtmlTooLargeError(HtmlImportError):
    """A saved page is over the byte or element limit: too large to be one, or to parse."""


class SavedAtError(HtmlImportError):
    """The saved pages' time cannot be used; ``stale``: they predate the list's last check."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


class FollowLossHeld(RoomwatchError):
    """A complete list would remove too many people at once; nothing was concluded.

    The message says how many and how to confirm; the caller adds its own way to confirm.
    """
