"""The ``roomwatch import-html`` command: follow state from saved followed-cams or followers pages.

For when crawling is not an option (no session, a site change): save the pages from a logged-in
browser and import them. The pages are read by the crawls' own parsers and judged by the same
rules (``formats/html_import.py``): what they show is always kept (source ``html_import``), and
follow state changes only when they are the whole list. Exit status 0 when the pages were
imported, complete or not (the output says which), 1 when they could not be read, were saved
before the list's last check (their time: the files' modification time, or ``--saved-at``), or
would remove more people than the mass-change guard allows without ``--confirm-loss``.
Followers pages that show no count are complete only if the Stats API's follower count, observed
within ``stats.count_max_age_minutes`` of when they were saved, matches them (else partial).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from formats.html_import import MAX_DOCUMENT_BYTES, ImportPlan, observation_time, plan_import
from roomwatch.config import Config
from roomwatch.errors import (
    CountUnconfirmed,
    DatabaseError,
    FollowLossHeld,
    HtmlImportError,
    SavedAtError,
)
from storage.accounts import account_of_pages, list_accounts
from storage.database import connect, open_database
from storage.follow_guard import last_check
from storage.follow_state import FollowChanges, reconcile, record_observations
from storage.migrator import pending_migrations

COMMANDS = frozenset({"import-html"})


def add_parsers(subparsers: Any) -> None:
    """Adds ``import-html`` to the ``roomwatch`` sub-command parsers."""
    command = subparsers.add_parser(
        "import-html", help="import saved followed-cams or followers pages (HTML)"
    )
    command.add_argument(
        "--kind",
        required=True,
        choices=("following", "followers"),
        help="following: pages of /followed-cams/; followers: pages of /accounts/followers/",
    )
    command.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="saved page(s); give every page of a multi-page list to change follow state",
    )
    command.add_argument(
        "--saved-at",
        metavar="TIME",
        help="when the pages were saved, ISO 8601 with a time zone (default: the oldest "
        "file's modification time)",
    )
    command.add_argument(
        "--account",
        help="whose pages they are (default: the account their header shows, else the only one)",
    )
    command.add_argument(
        "--confirm-loss",
        action="store_true",
        help="confirm a change that removes more people than follow.max_loss_share allows",
    )


def handle(args: argparse.Namespace, config: Config) -> int:
    """Runs ``import-html``; returns the exit status.

    Raises:
        RoomwatchError: Printed as one line by the caller (an unreadable file names it).
    """
    documents = [(str(path), _read(path)) for path in args.files]
    saved_at = _saved_at(args.saved_at) if args.saved_at else _oldest_mtime(args.files)
    plan = plan_import(args.kind, documents, config)
    try:
        plan, changes = store_plan(
            config,
            plan,
            saved_at=saved_at,
            account=args.account,
            confirm_loss=args.confirm_loss,
        )
    except FollowLossHeld as exc:
        raise FollowLossHeld(f"{exc}; import again with --confirm-loss to confirm") from None
    print(describe(plan, changes))
    return 0


def _saved_at(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SavedAtError(f"--saved-at: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise SavedAtError("--saved-at: give a time zone, for example 2026-03-01T12:00:00Z")
    return moment


def _oldest_mtime(paths: list[Path]) -> dt.datetime:
    """When the pages were saved, as far as the files tell (the oldest is the safe guess)."""
    return min(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC) for path in paths)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise HtmlImportError(f"{path}: larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise HtmlImportError(f"{path}: cannot read it ({exc.strerror})") from None


def store_plan(
    config: Config,
    plan: ImportPlan,
    *,
    saved_at: dt.datetime,
    account: str | None = None,
    confirm_loss: bool = False,
) -> tuple[ImportPlan, FollowChanges | None]:
    """Keeps the observations (as of ``saved_at``); sets follow state too if the plan is
    complete (for followers pages without a count: if the Stats API's count confirms them).

    Returns:
        The plan as it ended (a ``by_stats`` plan complete or partial) and what changed (None:
        nothing, the plan was partial).

    Raises:
        SavedAtError: the pages were saved before the list's last check, or in the future.
        FollowLossHeld: the mass-change guard held the change (observations are kept).
        InvalidInput: whose pages they are is unknown, or ``account`` contradicts them.
    """
    with open_database(config) as conninfo, connect(conninfo, autocommit=True) as conn:
        if pending_migrations(conn):
            raise DatabaseError("the database is not up to date: run roomwatch migrate")
        owner = account_of_pages(
            list_accounts(conn), account, plan.account, required=plan.concludes
        )
        plan = msgspec.structs.replace(plan, account=owner or "")
        observed_at = observation_time(plan.kind, saved_at, *last_check(conn, plan.relation, owner))
        record_observations(conn, plan.observations, source="html_import", observed_at=observed_at)
        if not plan.concludes:
            return plan, None
        try:
            changes = reconcile(
                conn,
                plan.relation,
                plan.usernames,
                account=owner or "",  # known: required when the plan concludes
                checked_at=observed_at,
                source="html_import",
                limits=config.follow,
                confirm_loss=confirm_loss,
                count_check=plan.count_check(config, observed_at),
            )
        except CountUnconfirmed as exc:
            return plan.unconfirmed(str(exc)), None
        return plan.confirmed(), changes


def describe(plan: ImportPlan, changes: FollowChanges | None) -> str:
    """One line for the user: what was kept and what changed."""
    line = f"{plan.kind}: {len(plan.observations)} persons recorded; {plan.reason}"
    if changes is None:
        return line
    if changes.baseline:
        return f"{line}; first check of this list: state set, no events"
    return f"{line}; {changes.added} added, {changes.removed} removed"
