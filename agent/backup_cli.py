"""``roomwatch backup FILE`` and ``roomwatch restore FILE``: the database into one file, and back.

The database is the configured one: the embedded cluster of ``data_dir`` (started for the
command, or joined while ``roomwatch run`` owns it, and left running for it) or
``database.url``'s server. What the file holds and how it is written and restored:
:mod:`storage.backup`. What it does not hold lives in the data dir and is named in the output
of both commands, so that it is saved and put back separately: above all the sessions key
(a secret, never inside a dump) and, with ``images.store = "files"``, the thumbnails.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.runtime import database_label, migrate
from roomwatch.config import Config
from roomwatch.errors import BackupError
from sessions.crypto import KEY_FILE_NAME
from storage.backup import AppliedMigrations, archive_migrations, dump_database, restore_database
from storage.database import connect, open_database
from storage.images import IMAGES_FOLDER
from storage.migrator import unknown_migrations

COMMANDS = frozenset({"backup", "restore"})


def add_parsers(subparsers: Any) -> None:
    """Adds ``backup`` and ``restore`` to the ``roomwatch`` sub-command parsers."""
    backup = subparsers.add_parser(
        "backup", help="write a consistent dump of the database to FILE (not the sessions key)"
    )
    backup.add_argument("file", metavar="FILE", type=Path, help="the file to write (replaced)")
    restore = subparsers.add_parser(
        "restore", help="restore a backup FILE into an empty database, then migrate it"
    )
    restore.add_argument("file", metavar="FILE", type=Path, help="a file roomwatch backup wrote")


def handle(args: argparse.Namespace, config: Config) -> int:
    """Runs ``backup`` or ``restore``; returns the exit status.

    Raises:
        RoomwatchError: printed as one line by the caller. A refused backup leaves no file,
            a refused restore an unchanged database; only a migration failing after a restore
            leaves the data restored, at the backup's schema (``roomwatch migrate`` retries).
    """
    if args.command == "backup":
        with open_database(config) as conninfo:
            applied = dump_database(conninfo, args.file)
        size = args.file.stat().st_size
        print(
            f"backup written: {args.file.absolute()} ({size / 1e6:.1f} MB, "
            f"{database_label(config)}, schema {_schema(applied)})"
        )
        print("not in the backup; save these separately:")
    else:
        applied = archive_migrations(args.file)
        unknown = unknown_migrations(applied)
        if unknown:
            raise BackupError(
                f"{args.file}: its migration {unknown[0]}; restore it with the roomwatch that "
                "made it (or a newer one)"
            )
        with open_database(config) as conninfo:
            with connect(conninfo, autocommit=True) as conn:
                restore_database(conn, conninfo, args.file)
            migrated = migrate(conninfo, config)
        since = f"; migrated since: {', '.join(migrated)}" if migrated else ""
        print(
            f"restored {args.file.absolute()} into {database_label(config)} "
            f"(schema {_schema(applied)}{since})"
        )
        print("not in the backup; put these back separately:")
    for line in _outside_the_dump(config):
        print(f"  {line}")
    return 0


def _schema(applied: AppliedMigrations) -> str:
    return applied[max(applied)][0]


def _outside_the_dump(config: Config) -> list[str]:
    """What roomwatch keeps outside the database, one line each (paths, never a secret)."""
    data = config.data_path
    if config.secret_key:
        key = "the sessions key: secret_key (ROOMWATCH_SECRET_KEY) of your config; keep it secret"
    else:
        key = (
            f"the sessions key: {data / KEY_FILE_NAME} (a secret; without it the stored "
            "login sessions cannot be read)"
        )
    lines = [key]  # the sessions themselves are in the database (encrypted), so in the dump
    if config.images.store == "files":
        lines.append(f"the thumbnails (images.store = files): {data / IMAGES_FOLDER}/")
    return lines
