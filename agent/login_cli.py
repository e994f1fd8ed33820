"""The ``roomwatch login`` and ``roomwatch sessions`` commands: capture, list, verify, delete.

``login`` captures in the browser first and opens the database only to store the result, so a
ten-minute interactive login never holds a connection. An imported cookie file is checked
against the site before it is stored (``--no-verify`` skips that, e.g. offline): cookies that
are not logged in are refused, and an unreachable site stores the session as ``unknown``.
``sessions verify`` exits 0 only for a valid session; an ``unknown`` outcome (site unreachable,
check not cleared) leaves the stored status as it was. Nothing printed here ever contains a
cookie value or a password.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from roomwatch.config import Config
from roomwatch.errors import DatabaseError, SessionError
from sessions.login import Capture, LoginTimeouts, form_login, import_cookies, interactive_login
from sessions.probe import ProbeOutcome, ProbeResult, verify_state
from sessions.store import (
    carry_session_files,
    delete_session,
    load_session,
    record_status,
    save_session,
)
from storage.database import connect, open_database
from storage.login_sessions import Connection, LoginSession, Status, list_login_sessions
from storage.migrator import pending_migrations

COMMANDS = frozenset({"login", "sessions"})


def add_parsers(subparsers: Any) -> None:
    """Adds ``login`` and ``sessions`` to the ``roomwatch`` sub-command parsers."""
    login = subparsers.add_parser("login", help="capture a login session for the logged-in crawls")
    how = login.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--interactive", action="store_true", help="log in yourself in a visible browser"
    )
    how.add_argument("--username", metavar="U", help="headless form login as U")
    how.add_argument(
        "--import",
        dest="import_file",
        type=Path,
        metavar="FILE",
        help="cookies JSON (browser extension), Playwright storage state, or cookies.txt",
    )
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    login.add_argument("--account", help="account name to record when the site does not show it")
    login.add_argument(
        "--timeout",
        type=float,
        default=LoginTimeouts().interactive,
        metavar="SECONDS",
        help="--interactive: how long to wait for you to log in (default: %(default).0f)",
    )
    login.add_argument(
        "--no-verify", action="store_true", help="--import: store without checking the site"
    )
    login.set_defaults(login_parser=login)

    sessions = subparsers.add_parser(
        "sessions", help="list, verify or delete stored sessions (metadata only)"
    )
    actions = sessions.add_subparsers(dest="sessions_action", metavar="ACTION")
    listing = actions.add_parser("list", help="stored sessions (default)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    verify = actions.add_parser("verify", help="check a session against the site")
    verify.add_argument("session_id", type=int, metavar="ID")
    delete = actions.add_parser("delete", help="delete a session and its encrypted file")
    delete.add_argument("session_id", type=int, metavar="ID")


def handle(args: argparse.Namespace, config: Config) -> int:
    """Runs ``login`` or ``sessions``; returns the exit status.

    Raises:
        RoomwatchError: Printed as one line by the caller.
    """
    if args.command == "login":
        return _login(args, config)
    action = args.sessions_action or "list"
    with _database(config) as conn:
        if action == "list":
            _print_list(list_login_sessions(conn), as_json=getattr(args, "json", False))
            return 0
        if action == "delete":
            row = delete_session(conn, config, args.session_id)
            print(f"deleted session #{row.session_id} ({row.account})")
            return 0
        row, state = load_session(conn, config, args.session_id)
        outcome = asyncio.run(verify_state(config, state))
        if outcome.result is not ProbeResult.UNKNOWN:
            row = record_status(conn, row.session_id, _status(outcome))
        print(f"session #{row.session_id} ({row.account}): {_describe(outcome)}")
        return 0 if outcome.result is ProbeResult.VALID else 1


@contextmanager
def _database(config: Config) -> Iterator[Connection]:
    with open_database(config) as conninfo, connect(conninfo, autocommit=True) as conn:
        if pending_migrations(conn):
            raise DatabaseError("the database is not up to date: run roomwatch migrate")
        carry_session_files(conn, config)  # left by a migrate that stopped half-way
        yield conn


def _login(args: argparse.Namespace, config: Config) -> int:
    if args.password_stdin and not args.username:
        args.login_parser.error("--password-stdin needs --username")
    status: Status = "valid"
    note = ""
    if args.username:
        password = _read_password(args.username, from_stdin=args.password_stdin)
        capture = asyncio.run(form_login(config, args.username, password))
    elif args.interactive:
        capture = asyncio.run(
            interactive_login(config, timeouts=LoginTimeouts(interactive=args.timeout))
        )
    else:
        capture, status, note = _checked_import(config, args.import_file, args.no_verify)
    account = capture.account or args.account or "unknown"
    with _database(config) as conn:
        row = save_session(
            conn, config, capture.state, account=account, method=capture.method, status=status
        )
    print(f"session #{row.session_id} saved for {row.account} ({row.method}, {row.status}{note})")
    return 0


def _checked_import(config: Config, path: Path, no_verify: bool) -> tuple[Capture, Status, str]:
    capture = import_cookies(config, path)
    if no_verify:
        return capture, "unknown", ": not checked"
    outcome = asyncio.run(verify_state(config, capture.state))
    if outcome.result is ProbeResult.EXPIRED:
        raise SessionError(f"the cookies in {path} are not logged in ({outcome.reason}); not saved")
    capture = msgspec.structs.replace(capture, account=outcome.account)
    note = "" if outcome.result is ProbeResult.VALID else f": not checked, {outcome.reason}"
    return capture, _status(outcome), note


def _read_password(username: str, *, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise SessionError("no password on stdin (--password-stdin reads its first line)")
        return password
    if not sys.stdin.isatty():
        raise SessionError("no terminal to ask for the password: use --password-stdin")
    password = getpass.getpass(f"password for {username}: ")
    if not password:
        raise SessionError("no password given")
    return password


def _status(outcome: ProbeOutcome) -> Status:
    if outcome.result is ProbeResult.VALID:
        return "valid"
    return "expired" if outcome.result is ProbeResult.EXPIRED else "unknown"


def _describe(outcome: ProbeOutcome) -> str:
    text = f"{outcome.result.value} ({outcome.reason})"
    if outcome.followed_total is not None:
        text += f", following {outcome.followed_online} online of {outcome.followed_total}"
    return text


def _print_list(rows: list[LoginSession], *, as_json: bool) -> None:
    if as_json:
        print(msgspec.json.format(msgspec.json.encode(rows).decode()))
        return
    if not rows:
        print("no sessions stored; capture one with roomwatch login")
        return
    print(f"{'ID':>4}  {'ACCOUNT':<20} {'METHOD':<12} {'STATUS':<8} {'CAPTURED':<17} VERIFIED")
    for row in rows:
        verified = (
            f"{row.last_verified_at.astimezone():%Y-%m-%d %H:%M}"
            if row.last_verified_at
            else "never"
        )
        print(
            f"{row.session_id:>4}  {row.account:<20} {row.method:<12} {row.status:<8} "
            f"{row.captured_at.astimezone():%Y-%m-%d %H:%M}  {verified}"
        )
