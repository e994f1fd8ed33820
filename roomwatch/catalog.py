"""The spiders roomwatch knows and how each may run; plain data every package may read.

The control API validates spider names against this without importing Scrapy, and the crawl
runner takes its rules from here (browser crawls: one per account, and one at a time with the
local runner; each has a timeout).

A spider that reads an upstream only the owner's own setting opens (``events.url``,
``stats.url``) names it in ``requires``: without it the spider refuses to start, and its
schedule does not fire (:func:`held_spiders`), so an install that never set it does
not collect a failed job every few minutes.

Spider arguments (``-a key=value``, ``"args"`` of ``POST /crawls``) become attributes of the
Scrapy spider, so anything not listed here could overwrite its machinery (``first_path`` would
send the logged-in probe elsewhere). Each spider therefore lists the arguments it takes, and
:func:`check_spider_args` refuses any other, at every door: the API, the CLI and the crawl
process itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from roomwatch.config import Config
from roomwatch.errors import JobError

_USERNAMES = re.compile(r"\s*[\w.-]+\s*(?:,\s*[\w.-]+\s*)*,?\s*")
_USERNAME = re.compile(r"[\w.-]{1,100}")
MAX_ARG_LENGTH = 5000
MAX_SECONDS = 7 * 24 * 3600


class SpiderArg(msgspec.Struct, frozen=True):
    """One argument a spider takes.

    Attributes:
        name: the argument's name.
        kind: ``usernames`` (comma-separated usernames), ``username`` (one), ``boolean``
            (``true``/``false``) or ``seconds`` (a whole number of seconds, 1 to
            :data:`MAX_SECONDS`).
        description: one line for people (the OpenAPI schema of ``POST /crawls`` shows it).
    """

    name: str
    kind: Literal["usernames", "username", "boolean", "seconds"]
    description: str


class SpiderInfo(msgspec.Struct, frozen=True):
    """How one spider runs.

    Attributes:
        name: the spider's name, equal to its module name in ``spiders/``.
        browser: drives Chromium (one per account; one at a time with the local runner).
        timeout_seconds: the crawl process is terminated, then killed, after this long.
        description: one line for people.
        args: the arguments it takes; any other is refused.
        runs_for: a long-running spider (a stream) ends itself, ``succeeded``, after this many
            seconds, and a "keep running" schedule starts it again; its ``timeout_seconds`` is
            longer, so the timeout only ends a stream that hangs.
        requires: the setting it cannot start without (``events.url``); the scheduler does not
            fire its schedules while that setting is empty.
    """

    name: str
    browser: bool
    timeout_seconds: int
    description: str
    args: tuple[SpiderArg, ...] = ()
    runs_for: int | None = None
    requires: str | None = None


_ONLY = SpiderArg("usernames", "usernames", "ask about exactly these persons (a,b,c)")
_CONFIRM = SpiderArg(
    "confirm_loss",
    "boolean",
    "true: conclude a complete list even if it drops more than follow.max_loss_share",
)
# The logged-in crawls read one account's lists, with that account's login session.
_ACCOUNT = SpiderArg(
    "account", "username", "the account whose lists to read (default: the newest usable session's)"
)
# The streams read one account's Events or Stats URL.
_STREAM_ACCOUNT = SpiderArg(
    "account",
    "username",
    "the account whose stream to read (default: the only one the URL setting names)",
)
SPIDERS: dict[str, SpiderInfo] = {
    info.name: info
    for info in (
        SpiderInfo(
            "affiliate", False, 600, "Affiliate API online-rooms feed", requires="affiliate.wm"
        ),
        SpiderInfo(
            "cbhours_live", False, 900, "CBHours live stats of trophy persons", args=(_ONLY,)
        ),
        SpiderInfo(
            "cbhours_activity",
            False,
            3600,
            "CBHours 60-day activity and backfill",
            args=(_ONLY, SpiderArg("backfill", "usernames", "force the months backfill (a,b)")),
        ),
        SpiderInfo(
            "followed_cams",
            True,
            900,
            "logged-in followed-cams lists (online, offline)",
            args=(_CONFIRM, _ACCOUNT),
        ),
        SpiderInfo("followers", True, 900, "logged-in followers list", args=(_CONFIRM, _ACCOUNT)),
        # The stream ends itself after an hour (``runs_for``); its keep-running schedule starts
        # it again at once. The timeout, 10 minutes longer, only ends one that hangs.
        SpiderInfo(
            "room_events",
            False,
            3600 + 600,
            "the owner's Events API stream (long-running)",
            args=(
                SpiderArg("until_idle", "boolean", "true: end at the first answer with no events"),
                SpiderArg("run_seconds", "seconds", "end after this many seconds (default 3600)"),
                _STREAM_ACCOUNT,
            ),
            runs_for=3600,
            requires="events.url",
        ),
        SpiderInfo(
            "room_stats",
            False,
            120,
            "the owner's Stats API: follower count, viewers, token balance",
            args=(_STREAM_ACCOUNT,),
            requires="stats.url",
        ),
    )
}


def stream_accounts(spider: str, config: Config) -> list[str] | None:
    """The accounts a stream spider can read (those its URL setting names: ``events.url``,
    ``stats.url``); None for any other spider."""
    requires = SPIDERS[spider].requires if spider in SPIDERS else None
    if requires not in ("events.url", "stats.url"):
        return None
    section = config.events if requires == "events.url" else config.stats
    return list(section.streams)


def stream_spider_accounts(config: Config) -> dict[str, list[str]]:
    """The accounts each stream spider can read with this config."""
    found = {spider: stream_accounts(spider, config) for spider in SPIDERS}
    return {spider: accounts for spider, accounts in found.items() if accounts is not None}


def held_spiders(config: Config) -> dict[str, str]:
    """Spiders that cannot run with this config, and why: their required setting is empty."""
    held = {}
    for info in SPIDERS.values():
        if info.requires is None:
            continue
        value: Any = config
        for part in info.requires.split("."):
            value = getattr(value, part)
        if not value:
            variable = "ROOMWATCH_" + info.requires.replace(".", "_").upper()
            held[info.name] = f"{info.requires} ({variable}) is not set"
    return held


def with_account(spider: str, args: Mapping[str, object], config: Config) -> dict[str, object]:
    """``args`` with a stream's one account filled in when the job names none, so its job row
    is that account's (one active job per spider and account holds for it too)."""
    accounts = stream_accounts(spider, config)
    if accounts is not None and len(accounts) == 1 and not args.get("account"):
        return {**args, "account": accounts[0]}
    return dict(args)


def arg_error(spider: str, key: str, value: object) -> str | None:
    """Why ``key=value`` is not an argument of ``spider``, or None if it is one."""
    info = SPIDERS.get(spider)
    known = {arg.name: arg for arg in info.args} if info else {}
    arg = known.get(key)
    if arg is None:
        allowed = ", ".join(known) or "none"
        return f"not an argument of the {spider} spider (it takes: {allowed})"
    if arg.kind == "boolean":
        if isinstance(value, bool) or value in ("true", "false"):
            return None
        return "expected true or false"
    if arg.kind == "seconds":
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            isinstance(text, str)
            and re.fullmatch("[0-9]{1,7}", text)
            and 1 <= int(text) <= MAX_SECONDS
        ):
            return None
        return f"expected a whole number of seconds from 1 to {MAX_SECONDS}"
    if arg.kind == "username":
        if isinstance(value, str) and _USERNAME.fullmatch(value):
            return None
        return "expected one username (letters, digits, _ . -)"
    if not isinstance(value, str) or len(value) > MAX_ARG_LENGTH:
        return f"expected comma-separated usernames (at most {MAX_ARG_LENGTH} characters)"
    if not _USERNAMES.fullmatch(value):
        return "expected comma-separated usernames (letters, digits, _ . -)"
    return None


def check_spider_args(spider: str, args: Mapping[str, object]) -> dict[str, str]:
    """``args`` checked against the allow-list of ``spider``, every value as a string.

    Spiders receive their arguments as strings whatever door they came in by (``true``, not
    ``True``), so a JSON ``true`` from the API reads the same as ``-a confirm_loss=true``.

    Raises:
        JobError: an argument is not one ``spider`` takes, or its value is wrong; the
            message names it (``confirm_loss: expected true or false``).
    """
    checked: dict[str, str] = {}
    for key, value in args.items():
        problem = arg_error(spider, key, value)
        if problem is not None:
            raise JobError(f"{key}: {problem}")
        checked[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return checked
