"""Alerts: the webhook hears of each once, without secrets; ``roomwatch status`` shows them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from agent.alerts import AlertNotifier
from roomwatch.config import AlertsConfig, Config
from storage.alerts import CLAIM_TIMEOUT, Alert, claim_notification, read_alerts
from storage.jobs import Job, create_job, finish_job, get_job
from storage.schedules import ensure_default_schedules
from tests.support import HttpRecorder


def _alerting(webhook: HttpRecorder) -> AlertsConfig:
    """Alerts after two failures in a row, to ``webhook`` (its URL holds a token: ``hush``)."""
    return AlertsConfig(webhook_url=f"http://{webhook.address}/hook?key=hush", failures_in_a_row=2)


def _fail(db: psycopg.Connection[Any], times: int, error: str) -> None:
    for _ in range(times):
        job = create_job(db, "affiliate", {}, "schedule")
        db.execute("UPDATE crawl_jobs SET status = 'running' WHERE job_id = %s", [job.job_id])
        finish_job(db, job.job_id, "failed", finish_reason="finished", error_message=error)


def test_each_alert_is_sent_once_and_retried_after_a_failed_delivery(
    db_url: str, webhook: HttpRecorder
) -> None:
    notifier = AlertNotifier(db_url, _alerting(webhook))
    with psycopg.connect(db_url, autocommit=True) as db:
        _fail(db, 2, "upstream said sessionid=abcdef123456 is bad")
        webhook.status = 500
        assert notifier.check() == []  # delivery failed: not marked as sent
        webhook.status = 204
        [sent] = notifier.check()
        assert sent.kind == "spider_failing"
        assert notifier.check() == []  # once
        _fail(db, 1, "again")
        assert notifier.check() == []  # the same streak
    body = webhook.bodies[-1]
    assert body["source"] == "roomwatch"
    assert (body["kind"], body["subject"]) == ("spider_failing", "affiliate")
    assert "sessionid=***" in body["message"] and "abcdef123456" not in body["message"]
    assert len(webhook.bodies) == 2


def test_roomwatch_status_shows_the_alerts_and_the_scheduler(
    crawl_env: Config, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as db:
        _fail(db, 3, "boom")
        ensure_default_schedules(db)
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ALERT: affiliate failed 3 times in a row; last error: boom" in result.stdout
    assert "scheduler: no agent" in result.stdout
    stream = next(line for line in result.stdout.splitlines() if "room_events" in line)
    assert stream.endswith("held: events.url (ROOMWATCH_EVENTS_URL) is not set")
    as_json = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(as_json.stdout)
    assert [a["kind"] for a in report["alerts"]] == ["spider_failing"]
    assert report["scheduler"]["active"] is False


def _fail_spider(db: psycopg.Connection[Any], spider: str, times: int) -> Job:
    for _ in range(times):
        job = create_job(db, spider, {}, "schedule")
        db.execute("UPDATE crawl_jobs SET status = 'running' WHERE job_id = %s", [job.job_id])
        finish_job(db, job.job_id, "failed", finish_reason="finished", error_message="boom")
    last = get_job(db, job.job_id)
    assert last is not None
    return last


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def test_a_claim_left_unsent_expires_and_the_alert_is_sent(
    db_url: str, webhook: HttpRecorder
) -> None:
    notifier = AlertNotifier(db_url, _alerting(webhook))
    with psycopg.connect(db_url, autocommit=True) as db:
        _fail(db, 2, "boom")
        [alert] = read_alerts(db, 2)
        assert claim_notification(db, alert.key)  # a process claimed it, then died unsent
        assert notifier.check() == []  # a fresh claim: someone may be sending it right now
        expired = CLAIM_TIMEOUT + dt.timedelta(minutes=1)
        db.execute("UPDATE alert_notifications SET claimed_at = now() - %s::interval", [expired])
        [sent] = notifier.check()
        assert sent.key == alert.key
        # Sent: however old, never sent again.
        db.execute("UPDATE alert_notifications SET claimed_at = now() - interval '1 day'")
        assert notifier.check() == []
    assert len(webhook.bodies) == 1


class _BuggyNotifier(AlertNotifier):
    """A notifier whose sender (or whole check) meets one exception nobody planned for."""

    def __init__(self, conninfo: str, settings: AlertsConfig, where: str) -> None:
        super().__init__(conninfo, settings)
        self.where = where
        self.raised = threading.Event()

    def _raise_once(self) -> None:
        if not self.raised.is_set():
            self.raised.set()
            raise RuntimeError(f"unforeseen, near {self._settings.webhook_url}")

    def check(self) -> list[Alert]:
        if self.where == "check":
            self._raise_once()
        return super().check()

    def _post_webhook(self, alert: Alert) -> bool:
        if self.where == "sender":
            self._raise_once()
        return super()._post_webhook(alert)


@pytest.mark.parametrize("where", ["sender", "check"])
def test_the_notifier_thread_survives_any_exception(
    db_url: str, webhook: HttpRecorder, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _alerting(webhook)
    notifier = _BuggyNotifier(db_url, settings, where)
    with caplog.at_level(logging.ERROR, logger="agent.alerts"):
        notifier.start()
        try:
            with psycopg.connect(db_url, autocommit=True) as db:
                notifier.job_finished(_fail_spider(db, "affiliate", 2))
                _wait_for(notifier.raised.is_set, "the exception")
                # The thread lives on: the next alert, and the one that met the exception,
                # are delivered.
                notifier.job_finished(_fail_spider(db, "cbhours_live", 2))
                _wait_for(lambda: len(webhook.bodies) == 2, "both alerts")
        finally:
            notifier.stop()
    assert sorted(body["subject"] for body in webhook.bodies) == ["affiliate", "cbhours_live"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError: unforeseen" in logged
    assert "hush" not in logged  # the webhook URL's token is redacted


def test_a_refused_token_is_an_alert_at_once_one_per_streak(
    db_url: str, webhook: HttpRecorder
) -> None:
    notifier = AlertNotifier(db_url, _alerting(webhook))
    refused = "the Events API refused the token (HTTP 401): create a new one ..."
    with psycopg.connect(db_url, autocommit=True) as db:

        def run(status: str, error: str | None) -> int:
            job = create_job(db, "room_events", {}, "schedule")
            db.execute("UPDATE crawl_jobs SET status = 'running' WHERE job_id = %s", [job.job_id])
            finish_job(db, job.job_id, status, finish_reason="finished", error_message=error)  # type: ignore[arg-type]
            return job.job_id

        first = run("failed", refused)
        [sent] = notifier.check()  # one refusal is enough: waiting will not fix a token
        assert (sent.kind, sent.subject) == ("token_refused", "room_events")
        run("failed", refused)  # restarted by its schedule, refused again: the same alert
        assert notifier.check() == []
        assert [a.key for a in read_alerts(db, 2) if a.kind == "token_refused"] == [
            f"token_refused:room_events:{first}"
        ]
        run("succeeded", None)  # a new token: the alert clears
        assert [a for a in read_alerts(db, 2) if a.kind == "token_refused"] == []
    assert webhook.bodies[0]["kind"] == "token_refused"
