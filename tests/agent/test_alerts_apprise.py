"""Alerts to Apprise URLs: real delivery over loopback (json://), retries, URLs kept secret."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.alerts import AlertNotifier
from roomwatch.config import AlertsConfig, load_config
from roomwatch.errors import ConfigError
from storage.jobs import create_job, finish_job, get_job
from tests.support import HttpRecorder

SECRET = "s3cr3t-path-token"


def _fail(db: psycopg.Connection[Any], times: int, error: str) -> int:
    """Records ``times`` failed affiliate crawls; returns the last one's id."""
    job_id = 0
    for _ in range(times):
        job_id = create_job(db, "affiliate", {}, "schedule").job_id
        db.execute("UPDATE crawl_jobs SET status = 'running' WHERE job_id = %s", [job_id])
        finish_job(db, job_id, "failed", finish_reason="finished", error_message=error)
    return job_id


def _claimed(db: psycopg.Connection[Any]) -> list[str]:
    return [row[0] for row in db.execute("SELECT alert_key FROM alert_notifications")]


def test_a_spider_failing_alert_reaches_an_apprise_url_once(
    db_url: str, endpoint: HttpRecorder
) -> None:
    notifier = AlertNotifier(
        db_url,
        AlertsConfig(
            apprise_urls=[f"json://{endpoint.address}/alerts/{SECRET}"], failures_in_a_row=2
        ),
    )
    notifier.start()  # an Apprise URL alone is enough to start the notifier's thread
    try:
        with psycopg.connect(db_url, autocommit=True) as db:
            job = get_job(db, _fail(db, 2, "upstream said sessionid=abcdef123456 is bad"))
            assert job is not None and job.status == "failed"
            notifier.job_finished(job)  # wakes the thread now rather than in CHECK_SECONDS
            deadline = time.monotonic() + 20
            while not endpoint.bodies and time.monotonic() < deadline:
                time.sleep(0.05)
            assert notifier.check() == []  # the thread sent it: once
    finally:
        notifier.stop()
    [body] = endpoint.bodies
    assert body["title"] == "roomwatch: spider_failing affiliate"
    assert body["message"].startswith("affiliate failed 2 times in a row; last error: upstream")
    assert "sessionid=***" in body["message"] and "abcdef123456" not in body["message"]
    assert body["type"] == "warning"


def test_a_failing_apprise_target_releases_the_claim_and_is_retried_at_the_next_check(
    db_url: str, endpoint: HttpRecorder, webhook: HttpRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook.status = 204
    notifier = AlertNotifier(
        db_url,
        AlertsConfig(
            webhook_url=f"http://{webhook.address}/hook",
            apprise_urls=[f"json://{endpoint.address}/alerts/{SECRET}"],
            failures_in_a_row=2,
        ),
    )
    with psycopg.connect(db_url, autocommit=True) as db:
        _fail(db, 2, "boom")
        endpoint.status = 500
        assert notifier.check() == []
        assert _claimed(db) == []  # released: the next check tries again
        endpoint.status = 200
        [sent] = notifier.check()
        assert _claimed(db) == [sent.key]
        assert notifier.check() == []
    assert len(endpoint.bodies) == 2  # the refused delivery, then the accepted one
    assert len(webhook.bodies) == 1  # the webhook had it the first time: not sent again
    assert "alerts: apprise URL 1 of 1 (json): failure; will retry" in caplog.messages
    assert SECRET not in caplog.text  # neither our lines nor Apprise's or urllib3's


def test_a_bad_apprise_url_fails_config_loading_naming_the_key_not_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good = f"json://127.0.0.1:9/{SECRET}"
    with pytest.raises(ConfigError) as failure:
        load_config({"ROOMWATCH_ALERTS_APPRISE_URLS": f"{good} tgram://{SECRET}"})
    message = str(failure.value)
    assert message.startswith(
        "alerts.apprise_urls (ROOMWATCH_ALERTS_APPRISE_URLS): entry 2 of 2 is not a URL "
        "Apprise can use"
    )
    assert SECRET not in message and "tgram" not in message and "\n" not in message
    assert SECRET not in caplog.text  # Apprise's complaint, quoting the URL, stays out too


def test_the_cli_refuses_a_bad_apprise_url_in_the_file_without_printing_it(
    tmp_path: Path,
) -> None:
    toml = tmp_path / "roomwatch.toml"
    toml.write_text(f'[alerts]\napprise_urls = ["nope://user:{SECRET}@host/x"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "ROOMWATCH_CONFIG": str(toml)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "roomwatch: alerts.apprise_urls (ROOMWATCH_ALERTS_APPRISE_URLS): entry 1 of 1"
    )
    assert SECRET not in result.stderr + result.stdout


def test_apprise_urls_in_the_environment_split_on_whitespace_and_between_urls() -> None:
    config = load_config(
        {
            "ROOMWATCH_ALERTS_APPRISE_URLS": " json://127.0.0.1:9/a,json://127.0.0.1:9/b "
            "mailto://u:p@example.com?to=a@example.org,b@example.org"
        }
    )
    assert config.alerts.apprise_urls == [
        "json://127.0.0.1:9/a",
        "json://127.0.0.1:9/b",
        "mailto://u:p@example.com?to=a@example.org,b@example.org",
    ]


def test_apprise_is_not_imported_unless_configured() -> None:
    code = (
        "import sys; import agent.runtime; from roomwatch.config import load_config; "
        "load_config({}); assert 'apprise' not in sys.modules, 'imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
