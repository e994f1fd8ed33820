"""The ``roomwatch watch`` command: the watch list (watched persons are persons of interest).

``watch add NAME ...`` puts persons on it (a username never seen is created, so the next crawls
ask about it), ``watch remove NAME ...`` takes them off, ``watch list`` prints it, one username
a line. ``watch mute NAME ...`` keeps their going live from being told (alerts), ``watch unmute
NAME ...`` lets it be told again. Usernames are checked with the parsers' own rule before
anything is written: one bad name refuses the whole command (exit 1, naming it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from formats.markup import valid_username
from roomwatch.config import Config
from roomwatch.errors import DatabaseError, UsernameError
from storage.database import connect, open_database
from storage.migrator import pending_migrations
from storage.watch_list import set_mute, set_watch, watched

COMMANDS = frozenset({"watch"})


def add_parsers(subparsers: Any) -> None:
    """Adds ``watch`` to the ``roomwatch`` sub-command parsers."""
    command = subparsers.add_parser(
        "watch", help="the watch list: watched persons are persons of interest"
    )
    command.add_argument(
        "action",
        choices=("add", "remove", "list", "mute", "unmute"),
        help="what to do (mute, unmute: their going-live alerts)",
    )
    command.add_argument(
        "usernames", nargs="*", metavar="USERNAME", help="for all but list: who (any case)"
    )


def _checked(names: list[str]) -> list[str]:
    checked = []
    for name in names:
        username = valid_username(name)
        if username is None or username != name.lower():
            raise UsernameError(f"{name!r} is not a username (2-64 letters, digits or _)")
        checked.append(username)
    return checked


def handle(args: argparse.Namespace, config: Config) -> int:
    """Runs ``watch``; returns the exit status (2 for a usage error).

    Raises:
        RoomwatchError: printed as one line by the caller.
    """
    if args.action == "list" and args.usernames:
        print("roomwatch: watch list takes no usernames", file=sys.stderr)
        return 2
    if args.action != "list" and not args.usernames:
        print(f"roomwatch: watch {args.action} needs at least one USERNAME", file=sys.stderr)
        return 2
    names = _checked(args.usernames)
    with open_database(config) as conninfo, connect(conninfo, autocommit=True) as conn:
        if pending_migrations(conn):
            raise DatabaseError("the database is not up to date: run roomwatch migrate")
        if args.action == "list":
            for state in watched(conn):
                print(state.username)
            return 0
        if args.action in ("mute", "unmute"):
            muted = set_mute(conn, names, args.action == "mute")
            verb = "muted" if args.action == "mute" else "not muted"
            print(f"{verb}: {', '.join(state.username for state in muted)}")
            return 0
        states = set_watch(conn, names, args.action == "add")
    verb = "watching" if args.action == "add" else "not watching"
    print(f"{verb}: {', '.join(state.username for state in states)}")
    return 0
