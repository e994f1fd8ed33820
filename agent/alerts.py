"""The alert notifier: POSTs each new alert to the configured webhook, once.

Alerts themselves are read from the database (``storage.alerts``) by ``/status`` and
``roomwatch status``; this only tells someone outside. It checks after every finished crawl and
every :data:`CHECK_SECONDS`. Each alert occurrence is claimed in ``alert_notifications`` before
it is sent, so several agents, or a restart, never send it twice; a failed delivery releases
the claim and is retried at the next check.

The body is small and holds no secret (messages pass through the log redaction)::

    {"source": "roomwatch", "kind": "spider_failing", "subject": "affiliate",
     "message": "affiliate failed 3 times in a row; last error: ...",
     "since": "2025-01-01T00:00:00+00:00", "host": "mybox"}
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading

import httpx
import msgspec
import psycopg

from roomwatch.config import AlertsConfig
from roomwatch.errors import DatabaseError
from roomwatch.logs import redact, register_secret
from storage.alerts import Alert, claim_notification, read_alerts, release_notification
from storage.database import connect
from storage.jobs import Job

log = logging.getLogger(__name__)
CHECK_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True):
    """What the webhook receives for one alert."""

    source: str
    kind: str
    subject: str
    message: str
    since: dt.datetime | None
    host: str


class AlertNotifier:
    """Sends new alerts to ``alerts.webhook_url``; does nothing without one.

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
        if settings.webhook_url:
            register_secret(settings.webhook_url)  # hook URLs often embed a token

    def start(self) -> None:
        """Starts checking (only if a webhook is configured)."""
        if not self._settings.webhook_url:
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
        """A crawl ended: a failure streak may have just reached the threshold."""
        if job.status == "failed":
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except (psycopg.Error, DatabaseError) as exc:
                log.warning("alerts: could not read them (%s)", exc)
            self._wake.wait(CHECK_SECONDS)
            self._wake.clear()

    def check(self) -> list[Alert]:
        """Sends every alert not sent yet; returns the ones sent."""
        sent: list[Alert] = []
        with connect(self._conninfo, autocommit=True) as conn:
            for alert in read_alerts(conn, self._settings.failures_in_a_row):
                if not claim_notification(conn, alert.key):
                    continue
                if self._send(alert):
                    sent.append(alert)
                else:
                    release_notification(conn, alert.key)
        return sent

    def _send(self, alert: Alert) -> bool:
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
        log.info("alerts: sent %s (%s)", alert.kind, alert.subject)
        return True
