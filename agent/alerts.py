"""The alert notifier: sends each new alert and notice to the configured webhook and Apprise
URLs, once.

Alerts themselves are read from the database (``storage.alerts``) by ``/status`` and
``roomwatch status``; this only tells someone outside. Notices (``storage.notices``: a watched
or followed person went live, a new or lost follower, a big tip) are news rather than
conditions, and only this reads them. It checks after every finished crawl and every
:data:`CHECK_SECONDS`.

Quiet hours (``alerts.quiet_hours``) hold back "went live" only: a broadcast that began in them,
or that is due while they last, is recorded as told without being sent, so it never arrives
late. Follower notices are claimed one by one first; when more than
``alerts.follower_digest_threshold`` are claimed at one check, one ``followers_digest`` goes
out in their place and they are all marked sent with it.

Each alert (or notice) occurrence is claimed in ``alert_notifications`` before it is sent, so
several agents, or a restart, never send it twice; if any target fails, the claim is released
and the alert is retried at the next check. A claim that is neither sent nor
released (the process died while sending) expires (``storage.alerts.CLAIM_TIMEOUT``), and no
exception ends the notifier's thread: it is logged (redacted) and the thread checks again,
backing off while the failures go on. The targets that did get it are
remembered (in this process) and not sent it again; after a restart, or by another agent, they
may be: a late duplicate is better than a lost alert.

The webhook body is small and holds no secret (messages pass through the log redaction)::

    {"source": "roomwatch", "kind": "spider_failing", "subject": "affiliate",
     "message": "affiliate failed 3 times in a row; last error: ...",
     "since": "2025-01-01T00:00:00+00:00", "host": "mybox"}

An Apprise URL gets the title ``roomwatch: spider_failing affiliate`` and the message as body.
Apprise is imported on first use, in the notifier's thread, so it never slows a start.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import psycopg

from roomwatch.config import AlertsConfig
from roomwatch.errors import DatabaseError
from roomwatch.logs import quiet_apprise_logs, redact, register_secret
from storage.alerts import (
    Alert,
    claim_notification,
    mark_notification_sent,
    read_alerts,
    release_notification,
)
from storage.database import connect
from storage.jobs import Job
from storage.notices import (
    Notice,
    followers_digest,
    forget_old_notices,
    in_quiet_hours,
    read_notices,
)

if TYPE_CHECKING:
    import apprise

log = logging.getLogger(__name__)
CHECK_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 600.0
FORGET_SECONDS = 3600.0


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True):
    """What the webhook receives for one alert."""

    source: str
    kind: str
    subject: str
    message: str
    since: dt.datetime | None
    host: str


class AlertNotifier:
    """Sends new alerts to ``alerts.webhook_url`` and ``alerts.apprise_urls``; idle without them.

    Args:
        conninfo: the database.
        settings: the ``[alerts]`` section.
    """

    def __init__(self, conninfo: str, settings: AlertsConfig) -> None:
        self._conninfo = conninfo
        self._settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._apprise: list[tuple[str, apprise.Apprise]] | None = None  # built on first use
        self._delivered: dict[str, set[str]] = {}  # alert key -> targets that already have it
        self._forget_at = 0.0  # when (monotonic) to next forget the claims of old notices
        # Hook and Apprise URLs often embed a token or a password.
        for url in (settings.webhook_url, *settings.apprise_urls):
            if url:
                register_secret(url)

    def start(self) -> None:
        """Starts checking (only if a webhook or an Apprise URL is configured)."""
        if not (self._settings.webhook_url or self._settings.apprise_urls):
            return
        self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops checking."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def job_finished(self, job: Job) -> None:
        """A crawl ended: a failure streak may have just reached the threshold, or a watched
        person just been seen going live."""
        if job.status in ("failed", "succeeded"):
            self._wake.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.check()
                failures = 0
            except (psycopg.Error, DatabaseError) as exc:
                failures += 1
                log.warning("alerts: could not read them (%s)", redact(str(exc)))
            except Exception as exc:  # noqa: BLE001 (the thread must outlive any bug or surprise)
                failures += 1
                log.error("alerts: check failed: %s; checking again", _describe(exc))
            # Failing again and again, wait longer (a wake-up, such as a failed crawl, still
            # checks at once).
            self._wake.wait(min(CHECK_SECONDS * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS))
            self._wake.clear()

    def check(self) -> list[Alert | Notice]:
        """Sends every alert and notice not sent yet to every target; returns the ones all
        targets got (a digest in place of the follower notices it stands for)."""
        sent: list[Alert | Notice] = []
        told: set[str] = set()  # the keys this check tried to send
        with connect(self._conninfo, autocommit=True) as conn:
            for alert in read_alerts(conn, self._settings.failures_in_a_row):
                self._tell(conn, alert, sent, told)
            notices = read_notices(conn, self._settings)
            now = dt.datetime.now(dt.UTC)
            for notice in notices.went_live:
                if notice.since is not None and in_quiet_hours(notice.since, self._settings):
                    self._hush(conn, notice, "it began in quiet hours")
                elif in_quiet_hours(now, self._settings):
                    self._hush(conn, notice, "quiet hours")
                else:
                    self._tell(conn, notice, sent, told)
            self._tell_followers(conn, notices.followers, sent, told)
            for notice in notices.big_tips:
                self._tell(conn, notice, sent, told)
            if time.monotonic() >= self._forget_at:
                forget_old_notices(conn)
                self._forget_at = time.monotonic() + FORGET_SECONDS
        # Partial deliveries of what is no longer due will never be completed.
        self._delivered = {k: v for k, v in self._delivered.items() if k in told}
        return sent

    def _tell(
        self,
        conn: psycopg.Connection[Any],
        item: Alert | Notice,
        sent: list[Alert | Notice],
        told: set[str],
    ) -> None:
        """Claims ``item`` and sends it."""
        if claim_notification(conn, item.key):
            self._settle(conn, item, [item.key], sent, told)

    def _tell_followers(
        self,
        conn: psycopg.Connection[Any],
        notices: list[Notice],
        sent: list[Alert | Notice],
        told: set[str],
    ) -> None:
        """Follower notices: each claimed first, so another notifier never tells one of them;
        more claimed than the threshold go out as one digest, marked sent (or released)
        together."""
        claimed = [n for n in notices if claim_notification(conn, n.key)]
        if len(claimed) > self._settings.follower_digest_threshold:
            self._settle(conn, followers_digest(claimed), [n.key for n in claimed], sent, told)
            return
        for notice in claimed:
            self._settle(conn, notice, [notice.key], sent, told)

    def _settle(
        self,
        conn: psycopg.Connection[Any],
        item: Alert | Notice,
        claims: list[str],
        sent: list[Alert | Notice],
        told: set[str],
    ) -> None:
        """Sends ``item``, then marks its ``claims`` sent, or releases them to be tried again."""
        told.add(item.key)
        delivered = self._deliver(item)
        for key in claims:
            if delivered:
                mark_notification_sent(conn, key)
            else:
                release_notification(conn, key)
        if delivered:
            sent.append(item)

    def _hush(self, conn: psycopg.Connection[Any], notice: Notice, why: str) -> None:
        """Records ``notice`` as done without sending it, so it is never sent late."""
        if claim_notification(conn, notice.key):
            mark_notification_sent(conn, notice.key)
            log.info("alerts: not telling %s (%s): %s", notice.kind, notice.subject, why)

    def _deliver(self, item: Alert | Notice) -> bool:
        """:meth:`_send`, with any surprise logged and counted as not delivered."""
        try:
            return self._send(item)
        except Exception as exc:  # noqa: BLE001 (one alert's surprise must not hold the others)
            log.error("alerts: sending %s failed: %s", item.kind, _describe(exc))
            return False

    def _send(self, alert: Alert | Notice) -> bool:
        """Delivers ``alert`` to each target that does not have it yet; True once all have."""
        delivered = self._delivered.setdefault(alert.key, set())
        missing = False
        if self._settings.webhook_url and "webhook" not in delivered:
            if self._post_webhook(alert):
                delivered.add("webhook")
            else:
                missing = True
        for name, target in self._apprise_targets():
            if name in delivered:
                continue
            if self._notify_apprise(name, target, alert):
                delivered.add(name)
            else:
                missing = True
        if missing:
            return False
        del self._delivered[alert.key]
        log.info("alerts: sent %s (%s)", alert.kind, alert.subject)
        return True

    def _post_webhook(self, alert: Alert | Notice) -> bool:
        body = WebhookBody(
            source="roomwatch",
            kind=alert.kind,
            subject=alert.subject,
            message=redact(alert.message),
            since=alert.since,
            host=socket.gethostname(),
        )
        try:
            response = httpx.post(
                self._settings.webhook_url,
                content=msgspec.json.encode(body),
                headers={"content-type": "application/json"},
                timeout=TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as exc:
            # The URL stays out of the log line: it may carry a token.
            log.warning("alerts: webhook unreachable (%s); will retry", type(exc).__name__)
            return False
        if response.is_error:
            log.warning("alerts: webhook answered HTTP %d; will retry", response.status_code)
            return False
        return True

    def _apprise_targets(self) -> list[tuple[str, apprise.Apprise]]:
        if self._apprise is None:
            urls = self._settings.apprise_urls
            self._apprise = _load_apprise_targets(urls) if urls else []
        return self._apprise

    def _notify_apprise(self, name: str, target: apprise.Apprise, alert: Alert | Notice) -> bool:
        import apprise

        # Upstream names are in the text: Apprise is told it is plain text, never markup.
        result = target.notify(
            title=f"roomwatch: {alert.kind} {alert.subject}",
            body=redact(alert.message),
            notify_type=apprise.NotifyType.WARNING
            if isinstance(alert, Alert)
            else apprise.NotifyType.INFO,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=TIMEOUT_SECONDS,
        )
        if not result:
            log.warning("alerts: %s: %s; will retry", name, result.status.name.lower())
            return False
        return True


def _describe(exc: BaseException) -> str:
    """An unexpected exception in one redacted line: its type and message, no traceback (whose
    frames could quote a target URL and its token)."""
    message = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _load_apprise_targets(urls: list[str]) -> list[tuple[str, apprise.Apprise]]:
    """One Apprise object per URL, so each succeeds or fails alone, named by its position."""
    # Apprise's log lines, and urllib3's at DEBUG (the path of each request), quote the URLs in
    # pieces the redaction filter cannot recognise: keep them out of our logs. Our own lines
    # name a target by its position and scheme only.
    quiet_apprise_logs()
    urllib3_log = logging.getLogger("urllib3")
    urllib3_log.setLevel(max(urllib3_log.level, logging.INFO))
    import apprise

    targets: list[tuple[str, apprise.Apprise]] = []
    for number, url in enumerate(urls, 1):
        target = apprise.Apprise()
        target.add(url)  # validated at config load; were it refused now, notify would say so
        scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*(?=://)", url)
        name = f"apprise URL {number} of {len(urls)} ({scheme.group() if scheme else '?'})"
        targets.append((name, target))
    return targets
