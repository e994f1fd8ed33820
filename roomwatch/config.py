"""Typed configuration, read once at process entry from the TOML file and ROOMWATCH_* variables.

Environment variables override the file. A variable ``ROOMWATCH_<SECTION>_<KEY>`` sets ``key``
in ``[section]``; one without a known section prefix sets a top-level key (``ROOMWATCH_DATA_DIR``
sets ``data_dir``). ``docs/configuration.md`` lists every key. Anything unknown or mistyped fails
at start-up with one line naming the key, so a typo never turns silently into a default.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

import msgspec
import psycopg

from roomwatch.errors import ConfigError, JobError
from roomwatch.logs import quiet_apprise_logs, register_secret

ENV_PREFIX = "ROOMWATCH_"
CONFIG_ENV = "ROOMWATCH_CONFIG"

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
MIN_TOKEN_LENGTH = 32  # the API token: an empty or short one is refused everywhere


def _check_http_url(value: str, key: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: expected an http(s) URL with a host")


def _apprise_can_use(url: str) -> bool:
    # Apprise's own parser decides. It is imported only when Apprise URLs are configured:
    # loading its plugins takes a fraction of a second.
    quiet_apprise_logs()
    import apprise

    return apprise.Apprise.instantiate(url) is not None


class DatabaseConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the data lives and how long history is kept.

    Attributes:
        url: PostgreSQL URL; empty starts the embedded server in ``data_dir/postgres``.
        pool_min: connections the pool keeps open.
        pool_max: most connections the pool opens.
        embedded_os_user: only when running as root: the system user the embedded server runs as
            (PostgreSQL refuses to run as root).
        snapshot_retention_days: raw per-poll snapshots older than this are dropped, a whole
            daily partition at a time; hourly rollups keep the shape of the history.
        rollup_retention_days: hourly rollups older than this are dropped.
        activity_retention_days: CBHours 3-minute activity samples older than this are
            dropped, a whole month at a time; 0 (the default) keeps them for ever. The daily
            online totals are kept either way.
        job_retention_days: finished crawl jobs older than this are deleted, and the logs of
            those that ran here; 0 keeps them for ever. A job that recorded a follow event
            stays (it is the event's provenance), without its log.
    """

    url: str = ""
    pool_min: NonNegativeInt = 1
    pool_max: PositiveInt = 10
    embedded_os_user: str = "roomwatch-pg"
    snapshot_retention_days: PositiveInt = 14
    rollup_retention_days: PositiveInt = 730
    activity_retention_days: NonNegativeInt = 0
    job_retention_days: NonNegativeInt = 90

    def __post_init__(self) -> None:
        if self.url:
            # libpq's own parser decides, now rather than at the first connection. Its messages
            # (and urlsplit's) quote the URL, password and all: only a plain line is passed on.
            if not self.url.startswith(("postgres://", "postgresql://")):
                raise ValueError("url: expected a postgres URL (postgresql://user@host/dbname)")
            try:
                password = psycopg.conninfo.conninfo_to_dict(self.url).get("password")
            except psycopg.ProgrammingError:
                raise ValueError(
                    "url: not a valid PostgreSQL URL (not shown: it may hold a password)"
                ) from None
            if password:
                register_secret(str(password), always=True)
                register_secret(quote(str(password), safe=""), always=True)  # as in the URL
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min: expected at most pool_max ({self.pool_max})")


class ChaturbateConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The site itself: login, followed-cams, followers and the room-list API."""

    url: str = "https://chaturbate.com"

    def __post_init__(self) -> None:
        _check_http_url(self.url, "url")


class AffiliateConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The Affiliate online-rooms feed and the filters sent with every poll.

    Attributes:
        max_rooms: the most rooms one poll pages through, whatever ``count`` the feed claims
            (a few thousand are online at peak); a poll cut short concludes nothing.
    """

    url: str = "https://chaturbate.com/api/public/affiliates/onlinerooms/"
    wm: str = ""
    client_ip: str = "request_ip"
    gender: list[Literal["f", "m", "t", "c"]] = msgspec.field(default_factory=list)
    region: list[Literal["asia", "europe_russia", "northamerica", "southamerica", "other"]] = (
        msgspec.field(default_factory=list)
    )
    tag: Annotated[list[str], msgspec.Meta(max_length=5)] = msgspec.field(default_factory=list)
    hd: bool | None = None
    max_rooms: PositiveInt = 50_000

    def __post_init__(self) -> None:
        _check_http_url(self.url, "url")


class CbhoursConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The CBHours API and who the CBHours spiders ask it about.

    Attributes:
        targets: persons of interest asked about: followed, followers, watch list, and
            ``room``: who tipped, joined the fan club or bought media in the owner's room.
        trophy_recheck_days: a person CBHours did not know (no trophy) is asked again after this.
        tzo: minutes from GMT the activity days are counted in (-300 = UTC-5); stored in UTC.
        min_interval_seconds: the least time between two requests to CBHours from the whole
            agent (all crawl processes). The API allows one per second; a little more than 1.0
            keeps two requests from arriving under 1 s apart when one of them is delayed on
            its way (scheduling, network); tests lower it.
    """

    url: str = "https://www.cbhours.com/api.php"
    targets: list[Literal["following", "follower", "watch", "room"]] = msgspec.field(
        default_factory=lambda: ["following", "follower", "watch", "room"]
    )
    trophy_recheck_days: PositiveInt = 7
    tzo: Annotated[int, msgspec.Meta(ge=-720, le=840)] = 0
    min_interval_seconds: Annotated[float, msgspec.Meta(ge=0)] = 1.04

    def __post_init__(self) -> None:
        _check_http_url(self.url, "url")


class BackoffConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How API crawls retry a 429, a 5xx or a network error (``crawler/middlewares.py``).

    Attributes:
        base_seconds: the wait before the first retry; each next one is ``factor`` times longer.
        factor: growth of the wait from one retry to the next.
        cap_seconds: no wait is longer, ``Retry-After`` included.
        max_retries: retries of one request; then it fails, and with it the crawl.
    """

    base_seconds: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    factor: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    cap_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    max_retries: NonNegativeInt = 4


class ApiConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The control API. ``token`` empty means: generate one into the data dir on first start.

    Attributes:
        person_cache_size: merged persons the API keeps in memory between writes (they are
            forgotten on every write the database announces); 0 reads every one afresh.
        session_hours: how long a sign-in to the web pages lasts (sessions live in the API
            process: a restart signs everyone out).
    """

    host: str = "127.0.0.1"
    port: Port = 8787
    token: str = ""
    person_cache_size: NonNegativeInt = 10_000
    session_hours: PositiveInt = 12

    def __post_init__(self) -> None:
        if self.token and (
            len(self.token) < MIN_TOKEN_LENGTH or any(char.isspace() for char in self.token)
        ):
            # The token itself is never shown: it is a secret even when it is a bad one.
            raise ValueError(
                f"token: expected at least {MIN_TOKEN_LENGTH} characters without spaces "
                "(or leave it empty to have one generated)"
            )


class MergeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Rules of ``v_person_current_state``.

    Attributes:
        recent_minutes: live status from a source older than this is not "recent": the view
            falls back to the next source, and finally to the last known value marked stale.
    """

    recent_minutes: PositiveInt = 10


class BrowserConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Chromium for the logged-in crawls; empty ``executable`` auto-detects.

    Attributes:
        block_resources: the crawl's browser does not download images, media and fonts
            (nothing read from a page needs them; they are most of its bytes).
    """

    executable: str = ""
    block_resources: bool = True


class FollowedCamsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``followed_cams`` crawl and imports of saved followed-cams pages.

    Attributes:
        count_tolerance: how far the rooms read may be from the header's "(online/total)"
            total for the list to count as complete (rooms followed or going live while the
            lists are read move the figures a little); 0 demands an exact match.
    """

    count_tolerance: NonNegativeInt = 0


class FollowersConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``followers`` crawl and imports of saved followers pages (markup unverified).

    Attributes:
        username_selector: CSS for the elements naming one follower each (the name is read
            from ``data-username``/``data-room``, else a ``/<name>/`` link, else the text).
            When it matches nothing, profile links in the main content are used instead.
        count_selector: CSS for an element holding the total number of followers, if shown.
        count_tolerance: how far the names read may be from that total and still count as
            complete.
    """

    username_selector: str = (
        "[data-testid=follower-username], .followers_list a.username, "
        "#followers_list a.username, .follower_list a.username"
    )
    count_selector: str = "[data-testid=followers-count], .followers_count"
    count_tolerance: NonNegativeInt = 0


class FollowConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The mass-change guard of follow state (crawls and HTML imports, both lists).

    A complete list that would remove more than ``max(max_loss_count, max_loss_share *
    current)`` people is stored as observations but not concluded until the user confirms it:
    a site change that shows a short or empty list must not wipe follow state.

    Attributes:
        max_loss_share: the share of the current list that may go in one check (0..1).
        max_loss_count: this many may always go, whatever the share (small lists).
    """

    max_loss_share: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    max_loss_count: NonNegativeInt = 5


class AgentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How ``roomwatch run`` schedules and executes crawls.

    Attributes:
        max_concurrent_crawls: crawls one agent runs at once (browser crawls: one at a time).
        shutdown_grace_seconds: on SIGINT/SIGTERM, running crawls get this long to end; then
            they are stopped and recorded ``cancelled``.
        min_interval_seconds: the shortest schedule interval accepted (tests lower it).
        lock_retry_seconds: how often an agent without the scheduler lock tries to take it.
    """

    max_concurrent_crawls: PositiveInt = 4
    shutdown_grace_seconds: NonNegativeInt = 20
    min_interval_seconds: PositiveInt = 60
    lock_retry_seconds: PositiveInt = 30


class AlertsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When ``/status`` raises an alert, which notices (went live, followers, big tips) there
    are, and who hears about both.

    Attributes:
        webhook_url: optional; each new alert is POSTed there as a small JSON object.
        apprise_urls: optional Apprise URLs (``tgram://...``, ``json://host/path``); each new
            alert goes to every one of them too. Like the webhook URL, they are secrets: an
            error names a bad one by its position, never by its text.
        failures_in_a_row: a spider whose last this-many finished crawls failed is an alert.
        quiet_hours: ``HH:MM-HH:MM`` (may span midnight) in ``timezone``, or empty: while it
            lasts, and for broadcasts that began in it, "went live" is not told (ever: not late).
        timezone: an IANA time zone name for ``quiet_hours``.
        live_gap_minutes: sightings online this close together are one broadcast.
        follower_digest_threshold: more new or lost followers than this at one check are
            told as one digest instead of one by one.
        big_tip_tokens: a tip of at least this many tokens is told; 0: never.
    """

    webhook_url: str = ""
    apprise_urls: list[str] = msgspec.field(default_factory=list)
    failures_in_a_row: PositiveInt = 3
    quiet_hours: str = ""
    timezone: str = "UTC"
    live_gap_minutes: PositiveInt = 15
    follower_digest_threshold: PositiveInt = 5
    big_tip_tokens: NonNegativeInt = 500

    def __post_init__(self) -> None:
        quiet_span(self.quiet_hours)
        time_zone(self.timezone)
        if self.webhook_url:
            _check_http_url(self.webhook_url, "webhook_url")
        for number, url in enumerate(self.apprise_urls, 1):
            if not _apprise_can_use(url):
                raise ValueError(
                    f"apprise_urls: entry {number} of {len(self.apprise_urls)} is not a URL "
                    "Apprise can use (not shown: it may hold a secret)"
                )


def quiet_span(text: str) -> tuple[dt.time, dt.time] | None:
    """The (start, end) of ``alerts.quiet_hours`` (``"23:00-07:00"``), or None when empty.

    Raises:
        ValueError: not two different ``HH:MM`` times joined by ``-``.
    """
    if not text:
        return None
    found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    try:
        if found is None:
            raise ValueError
        start = dt.time(int(found[1]), int(found[2]))
        end = dt.time(int(found[3]), int(found[4]))
    except ValueError:
        raise ValueError(f"quiet_hours: expected HH:MM-HH:MM, got {text!r}") from None
    if start == end:
        raise ValueError(f"quiet_hours: start and end are the same ({text!r})")
    return start, end


def time_zone(name: str) -> dt.tzinfo:
    """The zone ``alerts.timezone`` names (UTC without a lookup: the default must work on a
    system without a time zone database).

    Raises:
        ValueError: no such zone.
    """
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: expected an IANA time zone name, got {name!r}") from None


def _check_hosts(hosts: list[str]) -> None:
    for host in hosts:
        if not re.fullmatch(r"[a-z0-9.-]+", host):
            raise ValueError(f"allowed_hosts: expected lower-case host names, got {host!r}")


def _events_owner(url: str) -> tuple[str, str] | None:
    """(account, token) of an Events API URL, ``.../events/<username>/<token>/``; else None."""
    found = re.fullmatch(r"(?:/[^/]+)*/events/([^/]+)/([^/]+)/?", urlsplit(url).path)
    return (found[1].lower(), found[2]) if found else None


def _stats_owner(url: str) -> tuple[str, str] | None:
    """(account, token) of a Stats API URL, ``...?username=<username>&token=<token>``; else None."""
    query = parse_qs(urlsplit(url).query)
    account, token = query.get("username", [""])[0], query.get("token", [""])[0]
    return (account.lower(), token) if account and token else None


def _check_owner_url(
    value: str, hosts: list[str], owner: Callable[[str], tuple[str, str] | None], example: str
) -> None:
    """An Events or Stats API URL: http(s), on one of ``hosts``, naming an account and a token.

    The URL holds the owner's token: it and the token are registered as secrets first, and no
    message quotes the URL (the host is named: it is no secret).
    """
    register_secret(value, always=True)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url: expected an http(s) URL with a host (not shown: it holds a token)")
    found = owner(value)
    if found is None:
        raise ValueError(f"url: expected the shape {example} (not shown: it holds a token)")
    register_secret(found[1], always=True)
    if parts.hostname not in hosts:
        raise ValueError(
            f"url: host {parts.hostname!r} is not one of allowed_hosts ({', '.join(hosts)})"
        )


def _check_owner_urls(
    value: str, hosts: list[str], owner: Callable[[str], tuple[str, str] | None], example: str
) -> None:
    """``value``: one owner URL, or several (one per account) separated by whitespace; each
    checked by :func:`_check_owner_url`, and no account named twice."""
    register_secret(value, always=True)
    seen: set[str] = set()
    for url in value.split():
        _check_owner_url(url, hosts, owner, example)
        account = (owner(url) or ("", ""))[0]
        if account in seen:
            raise ValueError(f"url: two URLs name the account {account!r} (one URL per account)")
        seen.add(account)


class _OwnerStreams:
    """What the Events and Stats settings share: ``url`` holds one URL per account, separated
    by whitespace (the environment's one variable, a TOML string), each naming its account."""

    url: str

    @staticmethod
    def _owner(url: str) -> tuple[str, str] | None:
        raise NotImplementedError

    @property
    def streams(self) -> dict[str, str]:
        """Account (lower case) -> its URL, in the order given."""
        return {found[0]: url for url in self.url.split() if (found := self._owner(url))}

    @property
    def account(self) -> str:
        """The account when ``url`` names exactly one; empty with none or several."""
        streams = self.streams
        return next(iter(streams)) if len(streams) == 1 else ""

    @property
    def token(self) -> str:
        """The token of the one URL; empty with none or several."""
        return (self._owner(self.url) or ("", ""))[1] if self.account else ""

    def choose(self, account: str | None, setting: str) -> str:
        """The account a crawl of this stream reads: ``account`` (any case), which the URLs
        must name; else the only one they name.

        Raises:
            JobError: no URL is set, ``account`` has none, or several accounts and none named.
        """
        names = list(self.streams)
        if account:
            if account.lower() not in self.streams:
                known = ", ".join(names) or "none"
                raise JobError(
                    f"account: {setting} names no account {account.lower()!r} (it names: {known})"
                )
            return account.lower()
        if len(names) != 1:
            raise JobError(
                f"account: {setting} names several accounts ({', '.join(names)}): "
                "name one with -a account=NAME"
                if names
                else f"{setting} is not set"
            )
        return names[0]


class EventsConfig(_OwnerStreams, msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The owner's Events API stream (the ``room_events`` spider, source ``events_api``).

    Attributes:
        url: the Events API URL with its token, as the site shows it
            (``https://eventsapi.chaturbate.com/events/<username>/<token>/``); a secret. An
            install of several accounts gives one URL per account, separated by whitespace
            (one stream per account). Empty: the ``room_events`` spider refuses to start.
        allowed_hosts: the Events hosts ``url`` may name (the site's and its public testbed).
        timeout_seconds: how long the server holds a request open when nothing happens.
        max_requests_per_minute: the stream stays under this (the API allows about 2,000).
        store_message_text: off: chat and private messages and tip notes are stored without
            their text (the event, its time and its author are kept).
        retention_days: events older than this are dropped, a whole month at a time.
    """

    url: str = ""
    allowed_hosts: list[str] = msgspec.field(
        default_factory=lambda: ["eventsapi.chaturbate.com", "events.testbed.cb.dev"]
    )
    timeout_seconds: Annotated[int, msgspec.Meta(ge=0, le=90)] = 10
    max_requests_per_minute: PositiveInt = 1000
    store_message_text: bool = True
    retention_days: PositiveInt = 365

    def __post_init__(self) -> None:
        _check_hosts(self.allowed_hosts)
        if self.url:
            _check_owner_urls(
                self.url, self.allowed_hosts, _events_owner, "https://HOST/events/USERNAME/TOKEN/"
            )

    @staticmethod
    def _owner(url: str) -> tuple[str, str] | None:
        return _events_owner(url)


class StatsConfig(_OwnerStreams, msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The owner's Stats API (the ``room_stats`` spider, source ``stats_api``).

    Attributes:
        url: ``https://chaturbate.com/statsapi/?username=<username>&token=<token>``; a secret.
            Several accounts: one URL per account, separated by whitespace. Empty: the
            ``room_stats`` spider refuses to start.
        allowed_hosts: the hosts ``url`` may name.
        count_max_age_minutes: a followers crawl whose pages show no count concludes only
            against a Stats API follower count observed this recently.
    """

    url: str = ""
    allowed_hosts: list[str] = msgspec.field(default_factory=lambda: ["chaturbate.com"])
    count_max_age_minutes: PositiveInt = 10

    def __post_init__(self) -> None:
        _check_hosts(self.allowed_hosts)
        if self.url:
            _check_owner_urls(
                self.url,
                self.allowed_hosts,
                _stats_owner,
                "https://HOST/statsapi/?username=USERNAME&token=TOKEN",
            )

    @staticmethod
    def _owner(url: str) -> tuple[str, str] | None:
        return _stats_owner(url)


class ImagesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Thumbnails of persons of interest, downloaded into ``data_dir/images`` by API crawls.

    Attributes:
        enabled: download thumbnails at all.
        persons: which persons of interest get them: followed, followers, watch list, and
            ``room`` (tippers, fan-club joiners, media buyers in the owner's room).
        min_interval_hours: at most one download per person per this long (upstream
            thumbnails change while a room is live; one a day keeps the disk small).
        allowed_hosts: image URLs come from upstream data, so only http(s) URLs on exactly
            these hosts are fetched; any other is refused (counted, never requested).
        max_bytes: a bigger download is abandoned.
        max_pixels: a picture declaring more pixels (width x height) is refused before it is
            decoded: a small compressed file can declare a huge image (decompression bomb).
    """

    enabled: bool = True
    persons: list[Literal["following", "follower", "watch", "room"]] = msgspec.field(
        default_factory=lambda: ["following", "follower", "watch", "room"]
    )
    min_interval_hours: Annotated[float, msgspec.Meta(ge=0)] = 24.0
    allowed_hosts: list[str] = msgspec.field(
        default_factory=lambda: [
            "thumb.live.mmcdn.com",
            "jpeg.live.mmcdn.com",
            "roomimg.stream.highwebmedia.com",
        ]
    )
    max_bytes: PositiveInt = 2 * 1024 * 1024
    max_pixels: PositiveInt = 4_000_000
    store: Literal["files", "database"] = "files"

    def __post_init__(self) -> None:
        _check_hosts(self.allowed_hosts)


class ScrapydConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The Scrapyd nodes crawls go to when ``runner = "scrapyd"``.

    Attributes:
        urls: each node's root URL (``http://node1:6800``); credentials may be in the URL
            (``http://user:pass@node1:6800``) or in ``username``/``password``, never both.
        username, password: HTTP basic auth for every node (the password is a secret).
        project: the Scrapyd project the egg is deployed to (``roomwatch deploy``) and the
            agent schedules in.
        poll_seconds: how often a running job's node is asked about it.
        timeout_seconds: one request to a node; a node that does not answer in time counts
            as down for that round.
    """

    urls: list[str] = msgspec.field(default_factory=list)
    username: str = ""
    password: str = ""
    project: str = "roomwatch"
    poll_seconds: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0

    def __post_init__(self) -> None:
        if self.password:
            register_secret(self.password, always=True)
        for url in self.urls:
            _check_http_url(url, "urls")
            parts = urlsplit(url)
            if parts.password:
                register_secret(parts.password, always=True)
                if self.username or self.password:
                    raise ValueError(
                        "urls: credentials both in a node URL and in username/password"
                    )


class MetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``GET /metrics`` (Prometheus text format).

    Attributes:
        public: serve it without the API token. Refused unless the API listens on loopback.
    """

    public: bool = False


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything roomwatch reads from the outside world, in one frozen value."""

    data_dir: str = "~/.local/share/roomwatch"
    secret_key: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    chaturbate: ChaturbateConfig = msgspec.field(default_factory=ChaturbateConfig)
    affiliate: AffiliateConfig = msgspec.field(default_factory=AffiliateConfig)
    cbhours: CbhoursConfig = msgspec.field(default_factory=CbhoursConfig)
    backoff: BackoffConfig = msgspec.field(default_factory=BackoffConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    merge: MergeConfig = msgspec.field(default_factory=MergeConfig)
    browser: BrowserConfig = msgspec.field(default_factory=BrowserConfig)
    followed_cams: FollowedCamsConfig = msgspec.field(default_factory=FollowedCamsConfig)
    followers: FollowersConfig = msgspec.field(default_factory=FollowersConfig)
    follow: FollowConfig = msgspec.field(default_factory=FollowConfig)
    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    images: ImagesConfig = msgspec.field(default_factory=ImagesConfig)
    events: EventsConfig = msgspec.field(default_factory=EventsConfig)
    stats: StatsConfig = msgspec.field(default_factory=StatsConfig)
    runner: Literal["local", "scrapyd"] = "local"
    scrapyd: ScrapydConfig = msgspec.field(default_factory=ScrapydConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)

    def __post_init__(self) -> None:
        if self.runner == "scrapyd":
            if not self.scrapyd.urls:
                raise ValueError("runner: scrapyd needs at least one node in scrapyd.urls")
            if self.images.store == "files":
                raise ValueError(
                    'runner: scrapyd nodes cannot share data_dir; set images.store = "database"'
                )
        if self.metrics.public and self.api.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(
                f"metrics: public is allowed only while the API listens on loopback "
                f"(api.host is {self.api.host!r})"
            )

    @property
    def data_path(self) -> Path:
        """The data dir, with ``~`` expanded and made absolute."""
        return Path(self.data_dir).expanduser().resolve()

    def job_log(self, job_id: int) -> Path:
        """Where a crawl run on this machine logs (a Scrapyd node logs where Scrapyd says)."""
        return self.data_path / "logs" / f"job-{job_id}.log"

    def for_account(self, account: str) -> Config:
        """This config as a crawl of ``account`` sees it: ``events.url`` and ``stats.url``
        narrowed to that account's URL (empty where it has none)."""
        events = msgspec.structs.replace(self.events, url=self.events.streams.get(account, ""))
        stats = msgspec.structs.replace(self.stats, url=self.stats.streams.get(account, ""))
        return msgspec.structs.replace(self, events=events, stats=stats)

    def __repr__(self) -> str:
        # Secrets (token, key, database password) must never reach a log through a repr.
        return f"Config(data_dir={self.data_dir!r}, ...)"


# Variables whose name does not follow ROOMWATCH_<SECTION>_<KEY> (kept from INTERFACE.md).
_ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "ROOMWATCH_BROWSER": ("browser", "executable"),
}
_SECTIONS = tuple(
    name for name, field_type in Config.__annotations__.items() if field_type.endswith("Config")
)
_LIST_KEYS = {
    ("affiliate", "gender"),
    ("affiliate", "region"),
    ("affiliate", "tag"),
    ("cbhours", "targets"),
    ("images", "persons"),
    ("images", "allowed_hosts"),
    ("events", "allowed_hosts"),
    ("stats", "allowed_hosts"),
    ("scrapyd", "urls"),
}


def _env_path(name: str) -> tuple[str, ...]:
    if name in _ENV_ALIASES:
        return _ENV_ALIASES[name]
    rest = name[len(ENV_PREFIX) :].lower()
    for section in _SECTIONS:
        if rest.startswith(section + "_"):
            return (section, rest[len(section) + 1 :])
    return (rest,)


# Apprise URLs can hold commas of their own (``mailto://...?to=a@x.org,b@x.org``), so in the
# environment they are separated by whitespace, or by a comma only where the next URL begins.
_APPRISE_URLS_SEPARATOR = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def _env_value(path: tuple[str, ...], raw: str) -> Any:
    if path == ("alerts", "apprise_urls"):
        return [url for url in _APPRISE_URLS_SEPARATOR.split(raw.strip()) if url]
    if path in _LIST_KEYS:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if raw == "" and path == ("affiliate", "hd"):
        return None
    return raw


def _describe(path: tuple[str, ...]) -> str:
    dotted = ".".join(path)
    env = ENV_PREFIX + "_".join(path).upper()
    return f"{dotted} ({env})"


def load_config(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> Config:
    """Reads the TOML file and the environment into one validated ``Config``.

    Args:
        environ: the environment to read (default ``os.environ``); tests pass their own.
        config_file: the TOML file; default ``$ROOMWATCH_CONFIG``, none if unset.

    Raises:
        ConfigError: one line naming the bad key and what was expected.
    """
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    path = config_file if config_file is not None else env.get(CONFIG_ENV)
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML ({exc})") from exc

    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key_path = _env_path(name)
        target = data
        for part in key_path[:-1]:
            section = target.setdefault(part, {})
            if not isinstance(section, dict):
                raise ConfigError(f"{name}: {part} is not a section")
            target = section
        target[key_path[-1]] = _env_value(key_path, raw)

    try:
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _explain(exc: msgspec.ValidationError) -> str:
    """Turns msgspec's ``Expected `int`, got `str` - at `$.api.port``` into a key-first line."""
    detail, sep, where = str(exc).partition(" - at `")
    key_path = tuple(
        part.split("[")[0] for part in where.rstrip("`").split(".") if sep and part != "$"
    )
    if detail.startswith("Object contains unknown field"):
        # The location points at the containing object; the field name is in the message.
        return f"{_describe((*key_path, detail.split('`')[1]))}: unknown setting"
    own = re.match(r"(\w+): (.+)", detail)
    if own:
        # Raised by a __post_init__ above, which names the key inside its section.
        key_path, detail = (*key_path, own.group(1)), own.group(2)
    if not key_path:
        return f"config: {detail}"
    return f"{_describe(key_path)}: {detail[0].lower()}{detail[1:]}"
