"""Numbered ``.sql`` migrations, applied in order, each in its own transaction, recorded in a table.

A file is named ``NNNN_what.sql``. Applied files are recorded with a checksum; editing a file that
was already applied is an error (write a new migration instead). A failing file is rolled back
whole, so the database stays as it was before it, and the error names the file.

``0001_baseline.sql`` folds the migrations 0001-0009 of before it
(docs/decisions/0005-migration-baseline.md). A database that applied exactly those files (same
names, same checksums) is *adopted*: their rows become the baseline's, in one transaction, and
the baseline is not run. A database that applied only some of them is refused.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources

import msgspec
import psycopg
from psycopg import pq

from roomwatch.errors import MigrationError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every roomwatch process.
_LOCK_KEY = 0x726F6F6D  # "room"

_BASELINE = "0001_baseline.sql"
# The files 0001_baseline.sql replaced, as schema_migrations recorded them: version -> (file
# name, checksum). Constants: the files themselves are gone.
FOLDED: dict[int, tuple[str, str]] = {
    1: (
        "0001_schema.sql",
        "31581563881c0cab122dfb4efcc42606ee0d3c71f8020c1f043b5ffd2b71aff1",
    ),
    2: (
        "0002_current_state.sql",
        "aa0332ec31dd2d49675afbc13082acc722d9c779c7d207741b5758b5a62c1c09",
    ),
    3: (
        "0003_job_control.sql",
        "eaf6db10881da5e154a3f13ce82dd5390239d63d836310412cbb11d101c95ea7",
    ),
    5: (
        "0005_schedules.sql",
        "565b5e730ac027c287037233f0da76529e4c22838582715659bc716f8afb58d9",
    ),
    6: (
        "0006_hot_updates.sql",
        "c565812f50370d4a7e89f20c544dd64d7a6747a0c83e4443a95fede8693f2ba8",
    ),
    7: (
        "0007_person_summary.sql",
        "1a72920b74e294ca59dd73403d601b4286981628684968e77c1d18c8b2242f7c",
    ),
    8: (
        "0008_merge_window_once.sql",
        "bf356bcc0b7e77c1be28fba8558a1e5929fd7df5854840567649ea53c57f2dca",
    ),
    9: (
        "0009_tag_followers.sql",
        "d920b6e84c01658c6c1404a9fa96e14a186371e3b0939269c988981b1405d8a6",
    ),
}

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    filename   text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class Migration(msgspec.Struct, frozen=True):
    """One migration file."""

    version: int
    filename: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in ``storage/migrations``, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("storage/migrations", "two files share a version number")
    return found


def apply_migrations(
    conn: psycopg.Connection[tuple[object, ...]], migrations: list[Migration] | None = None
) -> list[str]:
    """Applies every pending migration; returns the file names applied (empty: nothing to do).

    Raises:
        MigrationError: a file failed (it was rolled back) or an applied file was edited.
    """
    todo = bundled_migrations() if migrations is None else migrations
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.commit()  # each migration must be its own top-level transaction
    previous, conn.autocommit = conn.autocommit, True
    try:
        with migrations_locked(conn):
            return _apply_all(conn, todo)
    finally:
        conn.autocommit = previous


@contextmanager
def migrations_locked(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[None]:
    """Holds the lock :func:`apply_migrations` takes (``conn`` in autocommit): no roomwatch
    process changes the schema meanwhile (a restore checks and fills a database under it)."""
    conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def _apply_all(conn: psycopg.Connection[tuple[object, ...]], todo: list[Migration]) -> list[str]:
    conn.execute(_CREATE_TABLE)
    rows = conn.execute("SELECT version, filename, checksum FROM schema_migrations").fetchall()
    applied = {int(str(v)): (str(f), str(c)) for v, f, c in rows}
    baseline = next((m for m in todo if m.filename == _BASELINE), None)
    if baseline is not None and applied.get(1) == FOLDED[1]:
        _adopt(conn, baseline, applied)
    done: list[str] = []
    for migration in todo:
        if migration.version in applied:
            filename, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise MigrationError(
                    migration.filename,
                    f"it was changed after it was applied (as {filename}); "
                    "add a new migration instead",
                )
            continue
        _apply_one(conn, migration)
        done.append(migration.filename)
    return done


def unknown_migrations(applied: Mapping[int, tuple[str, str]]) -> list[str]:
    """What of ``applied`` (version -> file name, checksum, as ``schema_migrations`` holds
    them) this code cannot carry on from, one phrase each; empty when it can.

    A version it has not got came from a newer roomwatch; a version whose file differs from
    this code's came from another one. The files ``0001_baseline.sql`` folded are known (they
    are adopted). A database with anything listed here must not be migrated by this code.
    """
    bundled = {m.version: m for m in bundled_migrations()}
    problems = []
    for version, (filename, checksum) in sorted(applied.items()):
        if FOLDED.get(version) == (filename, checksum):
            continue
        mine = bundled.get(version)
        if mine is None:
            problems.append(f"{filename} is newer than this roomwatch")
        elif mine.checksum != checksum:
            problems.append(f"{filename} differs from this roomwatch's {mine.filename}")
    return problems


def _adopt(
    conn: psycopg.Connection[tuple[object, ...]],
    baseline: Migration,
    applied: dict[int, tuple[str, str]],
) -> None:
    """Records ``baseline`` as applied in place of the files it folded (``applied`` follows)."""
    missing = [
        name for version, (name, _) in FOLDED.items() if applied.get(version) != FOLDED[version]
    ]
    if missing:
        raise MigrationError(
            baseline.filename,
            "this database applied only part of the migrations it folds "
            f"(not {', '.join(missing)}); finish them with a roomwatch from before the fold first",
        )
    with conn.transaction():
        conn.execute("DELETE FROM schema_migrations WHERE version = ANY(%s)", [list(FOLDED)])
        conn.execute(
            "INSERT INTO schema_migrations (version, filename, checksum) VALUES (%s, %s, %s)",
            [baseline.version, baseline.filename, baseline.checksum],
        )
    for version in FOLDED:
        del applied[version]
    applied[baseline.version] = (baseline.filename, baseline.checksum)
    log.info(
        "migrations: adopted %s for the %d migrations it folds (%s to %s)",
        baseline.filename,
        len(FOLDED),
        FOLDED[min(FOLDED)][0],
        FOLDED[max(FOLDED)][0],
    )


def _apply_one(conn: psycopg.Connection[tuple[object, ...]], migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, filename, checksum) VALUES (%s, %s, %s)",
                [migration.version, migration.filename, migration.checksum],
            )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MigrationError(migration.filename, reason) from None


def pending_migrations(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """File names not applied yet (for ``roomwatch status``)."""
    applied: set[int] = set()
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if exists and exists[0]:
            rows = conn.execute("SELECT version FROM schema_migrations")
            applied = {int(str(r[0])) for r in rows}
    return [m.filename for m in bundled_migrations() if m.version not in applied]
