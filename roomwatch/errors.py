"""The one exceptions module: every error roomwatch raises on purpose lives here.

Hierarchy::

    RoomwatchError                 base; its message is one line meant for the user
    ├── ConfigError                a setting is missing or has the wrong type or value
    ├── DatabaseError              the database could not be reached, started or used
    │   ├── EmbeddedDatabaseError  the embedded PostgreSQL could not be set up or started
    │   ├── MigrationError         a migration file failed; the database is as it was before it
    │   └── BackupError            a backup cannot be written, or a file cannot be restored
    ├── UpstreamError              an upstream answered something we cannot use
    │   └── DecodeError            a response did not match the documented format (names the field)
    │       ├── PageError          an Affiliate feed page did (its room and field)
    │       └── RoomListError      a logged-in room-list API answer did
    ├── SessionError               a login session is missing, invalid or expired
    ├── JobError                   a crawl job request cannot be honoured (unknown spider, conflict)
    │   ├── JobConflict            one of that spider is already queued or running (``existing``)
    │   ├── JobEnded               a job asked to stop has already ended (``job_id``)
    │   └── ScrapydError           a Scrapyd node did not answer, or refused a request
    ├── DeployError                ``roomwatch deploy`` cannot build the project's egg
    ├── RequestError               a request to the API or a page cannot be honoured as sent;
    │   │                          ``field`` names the parameter or body field at fault
    │   ├── InvalidInput           a value is unusable; ``source`` (query, path, body) when the
    │   │   │                      client named the parameter (the API lists it in ``extra``)
    │   │   ├── AccountNotChosen   several accounts and none named (``choices``)
    │   │   └── ScheduleError      a schedule change is invalid (a body field)
    │   ├── NotFound               what the request names does not exist
    │   ├── UnsupportedMediaType   a body in a format the route does not read
    │   └── NotLoggedIn            cookies offered as a login session are not logged in
    ├── UsernameError              a name given for the watch list cannot be a username
    ├── HtmlImportError            a saved page offered for import cannot be used (names the file)
    │   ├── HtmlTooLargeError      it is over the byte or element limit (the API answers 413)
    │   └── SavedAtError           its saved time is unusable (future); ``stale``: older than
    │                              the list's last check (it would roll follow state back)
    ├── FollowLossHeld             a complete follow list would remove more people than
    │                              ``follow.max_loss_share`` allows: held until confirmed
    └── CountUnconfirmed           a followers list whose pages show no count is not confirmed
                                   by a recent Stats API follower count: not concluded

Errors surface once, at the edge that owns the user: the CLI prints ``str(error)`` and exits
non-zero, the API answers RFC 9457 problem details, a crawl job records ``failed`` with it.
Which status and problem body each error gets (and the status of the pages' error pages) is
decided in one place, ``control_api/problems.py``; code that refuses a request raises one of
these and never builds an answer itself.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class BackupError(DatabaseError):
    """``roomwatch backup`` or ``restore`` cannot be done; the message names the file or the
    database and the problem (never a password). A refused restore changed nothing."""


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


class JobEnded(JobError):
    """A job asked to stop has already ended; ``job_id`` is its id."""

    def __init__(self, job_id: int, status: str) -> None:
        super().__init__(f"crawl job #{job_id} has already ended ({status})")
        self.job_id = job_id


class ScrapydError(JobError):
    """A Scrapyd node did not answer (``answered`` False: down, unreachable, too slow), or
    answered with an error (a refused password, an unknown project or spider). The message
    names the node by host and port, never with its credentials."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


class DeployError(RoomwatchError):
    """``roomwatch deploy`` cannot build the project's egg (not a checkout, a failed build);
    the message says why."""


class RequestError(RoomwatchError):
    """A request cannot be honoured as sent; ``field`` names what is at fault, ``reason`` says
    what (``str(error)`` is the whole line a user sees)."""

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.reason = message if reason is None else reason


class InvalidInput(RequestError):
    """A parameter, body or form field holds a value that cannot be used.

    The message is ``"<field>: <reason>"``. ``source`` (``query``, ``path`` or ``body``) is set
    when the field is a parameter the client named; the API then also lists it in ``extra``.
    """

    def __init__(self, field: str, reason: str, source: str | None = None) -> None:
        super().__init__(field, f"{field}: {reason}", reason=reason)
        self.source = source


class AccountNotChosen(InvalidInput):
    """Follow state was asked for on an install of several accounts without naming one;
    ``choices`` are the accounts (the pages offer them to pick from)."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__("account", f"several accounts: name one of {', '.join(choices)}", "query")
        self.choices = tuple(choices)


class ScheduleError(InvalidInput):
    """A schedule change was refused; ``field`` is the field that was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, source="body")


class NotFound(RequestError):
    """What the request names (``field``: the path parameter) does not exist."""


class UnsupportedMediaType(RequestError):
    """A body sent in a format the route does not read (``field`` is ``body``)."""


class NotLoggedIn(RequestError):
    """Cookies offered as a login session turned out not to be logged in; nothing was kept."""


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


class CountUnconfirmed(RoomwatchError):
    """A followers list whose pages show no count, which no recent Stats API follower count
    confirms (none observed lately, or one that does not match); nothing was concluded.

    The message says which, with the count, its time and the names read.
    """


TOKEN_REFUSED = "refused the token"  # noqa: S105 (words of a message, not a token)
"""Words in a crawl job's error when an owner's API (Events, Stats) refused the configured token
(HTTP 401/403): ``storage/alerts.py`` raises a ``token_refused`` alert from the first such job,
since waiting will not fix it; the owner must create a new token and set the URL again."""
