"""Numbered ``.sql`` migrations, applied in order, each in its own transaction, recorded in a table.

A file is named ``NNNN_what.sql``. Applied files are recorded with a checksum; editing a file that
was already applied is an error (write a new migration instead). A failing file is rolled back
whole, so the database stays as it was before it, and the error names the file.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import msgspec
import psycopg
from psycopg import pq

from roomwatch.errors import MigrationError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any constant works; it only has to be the same for every roomwatch process.
_LOCK_KEY = 0x726F6F6D  # "room"

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
    conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
    try:
        conn.execute(_CREATE_TABLE)
        rows = conn.execute("SELECT version, filename, checksum FROM schema_migrations").fetchall()
        applied = {int(str(v)): (str(f), str(c)) for v, f, c in rows}
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
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
        conn.autocommit = previous


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
