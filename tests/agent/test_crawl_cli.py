"""Spider arguments are checked against the spider's allow-list at the CLI and in the crawl
process itself (the API's check is in tests/control_api/test_crawls.py)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from agent.cli import main
from agent.runner import CrawlRunner
from roomwatch.config import Config
from storage.jobs import create_job


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (
            "first_path=/elsewhere/",
            "-a first_path: not an argument of the followers spider "
            "(it takes: confirm_loss, account)",
        ),
        ("confirm_loss=yes", "-a confirm_loss: expected true or false"),
    ],
)
def test_the_cli_refuses_an_argument_the_spider_does_not_take(
    crawl_env: Config,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    pair: str,
    message: str,
) -> None:
    assert main(["crawl", "followers", "-a", pair]) == 2
    assert capsys.readouterr().err == f"roomwatch: {message}\n"
    assert db.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (0,)  # nothing queued


def test_the_account_option_is_the_account_argument(
    crawl_env: Config, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crawl", "followers", "--account", "a,b"]) == 2
    assert capsys.readouterr().err == "roomwatch: -a account: expected one username " + (
        "(letters, digits, _ . -)\n"
    )
    assert main(["crawl", "followers", "--account", "nobody"]) != 0
    assert "account: no account 'nobody' here" in capsys.readouterr().err
    assert db.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (0,)  # nothing queued


def test_the_crawl_process_refuses_a_job_row_with_an_argument_off_the_list(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any]
) -> None:
    # A row written past the API and the CLI (by hand, an old version): the crawl process checks.
    job_id = create_job(db, "followers", {"first_path": "/elsewhere/"}, "cli").job_id
    db.commit()
    job = CrawlRunner(crawl_env, db_url).run(job_id)
    assert job.status == "failed"
    assert job.error_message == (
        "first_path: not an argument of the followers spider (it takes: confirm_loss, account)"
    )


def test_a_confirmation_is_not_lost_to_a_job_already_queued_without_it(
    crawl_env: Config, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # A scheduled followers job is queued; following it would report a run that was never
    # confirmed, so the CLI refuses and says how to get the confirmed one.
    queued = create_job(db, "followers", {}, "schedule").job_id
    db.commit()
    assert main(["crawl", "followers", "-a", "confirm_loss=true"]) == 1
    err = capsys.readouterr().err
    assert f"(#{queued}) with other arguments (none): wait for it or cancel it" in err
    assert db.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (1,)
