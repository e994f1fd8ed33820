"""What keeps one bad row or one wrong clock from spoiling a write: set-aside rows, clamped times.

**Set-aside rows.** A batch is one transaction, and one row PostgreSQL refuses (a value out of
range, text it cannot hold) used to fail all 2,500 rows of it, so no room of the batch was
stored. :func:`store_or_set_aside` writes the batch inside a savepoint; if the database refuses
a value, it writes each half in its own savepoint, down to the single rows that fail. Those
are set aside (logged with the username, counted by the caller), the others are stored. A
batch with one bad row costs about twice the work, a good batch one extra savepoint.

**Clamped times.** An observation time comes from the crawl machine's clock; stamped in the
future (a skewed clock), it would win every "newest observation" comparison until the real
time caught up. :func:`database_time` keeps a time within :data:`CLOCK_MARGIN` of the
database's ``now()`` as it is, and replaces one beyond it by ``now()`` itself: the observation
cannot have happened after it reached the database, whereas ``now() + margin`` would invent a
future time. Times within the margin are kept so that one poll stays one observation time
across its batches (and a rewrite of a batch stays an idempotent rewrite).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import psycopg

from storage.records import WriteResult

log = logging.getLogger(__name__)

CLOCK_MARGIN = dt.timedelta(minutes=5)

# Errors that belong to a row's values, not to the database or the batch: data exceptions
# (class 22: out of range, NUL, bad encoding, bad JSON), constraint checks on a value, an index
# entry too large; UnicodeEncodeError is psycopg failing to encode a lone surrogate.
UNSTORABLE_ROW_ERRORS: tuple[type[Exception], ...] = (
    psycopg.DataError,
    psycopg.errors.CheckViolation,
    psycopg.errors.NotNullViolation,
    psycopg.errors.ProgramLimitExceeded,
    UnicodeEncodeError,
)


class _Named(Protocol):
    @property
    def username(self) -> str: ...


RowT = TypeVar("RowT", bound=_Named)


Write = Callable[[psycopg.Connection[Any], Sequence[RowT], dt.datetime, int | None], WriteResult]


def store_or_set_aside(
    conn: psycopg.Connection[Any],
    rows: Sequence[RowT],
    write: Write[RowT],
    observed_at: dt.datetime,
    job_id: int | None,
    *,
    what: str,
) -> WriteResult:
    """Writes a batch at :func:`database_time`, setting aside the rows the database refuses.

    Must be called inside a transaction (the caller's batch). ``write(conn, rows, observed_at,
    job_id)`` runs in a savepoint; if the database refuses a value, each half of the rows is
    written in its own savepoint, down to the single rows that fail. ``write`` must leave no
    state that a second call in the same transaction trips over (drop its staging tables).

    Args:
        rows: the batch; each row names its person (``username``) for the log line.
        write: stores some of the rows at the (clamped) observation time; may be called
            several times with parts of them.
        observed_at: the batch's observation time, clamped to the database clock.
        job_id: the crawl job, for ``write`` and the log line.
        what: names the kind of row in the log line (``affiliate room``).

    Returns:
        The sum of the writes that succeeded, with the usernames of the rows set aside.

    Raises:
        psycopg.Error: the database refused every row of a batch of several: that is no
            row's fault (a broken statement, a changed schema) and fails the batch as before.
    """
    if not rows:
        return WriteResult(0, 0)
    observed_at = database_time(conn, observed_at)
    refused: list[Exception] = []

    def attempt(part: Sequence[RowT]) -> WriteResult:
        try:
            with conn.transaction():
                return write(conn, part, observed_at, job_id)
        except UNSTORABLE_ROW_ERRORS as exc:
            refused.append(exc)
            if len(part) == 1:
                return _set_aside(part[0].username, exc, what, job_id)
        results = [attempt(part[: len(part) // 2]), attempt(part[len(part) // 2 :])]
        return WriteResult(
            sum(r.inserted for r in results),
            sum(r.duplicates for r in results),
            set_aside=tuple(name for r in results for name in r.set_aside),
        )

    result = attempt(rows)
    if len(rows) > 1 and len(result.set_aside) == len(rows):
        raise refused[0]
    return result


def _set_aside(name: str, exc: Exception, what: str, job_id: int | None) -> WriteResult:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    log.warning("job %s: %s %s set aside, not storable: %s", job_id, what, name, reason)
    return WriteResult(0, 0, set_aside=(name,))


def database_time(conn: psycopg.Connection[Any], observed_at: dt.datetime) -> dt.datetime:
    """``observed_at``, or the database's ``now()`` if it is more than the margin ahead of it."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return _clamped(observed_at, row[0])


async def database_time_async(
    conn: psycopg.AsyncConnection[Any], observed_at: dt.datetime
) -> dt.datetime:
    """:func:`database_time` on an asynchronous connection."""
    cursor = await conn.execute("SELECT now()")
    row = await cursor.fetchone()
    assert row is not None
    return _clamped(observed_at, row[0])


def _clamped(observed_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    if observed_at <= now + CLOCK_MARGIN:
        return observed_at
    log.warning(
        "observation time %s is %s ahead of the database clock: stored at %s instead",
        observed_at.isoformat(),
        observed_at - now,
        now.isoformat(),
    )
    return now
