"""The room_stats spider against the simulated Stats API, into the real database; and the
followers crawl that its count lets conclude."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from roomwatch.config import Config, load_config
from spiders.room_stats import NOT_SET
from storage.jobs import Job
from tests.spiders.follow_support import ACCOUNT, PASSWORD, log_in, relation
from tests.support import crawl, set_switches
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

WRONG_TOKEN = "Wr0ngT0kenWr0ngT0kenWr0ng"


@pytest.fixture
def stats_env(crawl_env: Config, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Config:
    """``crawl_env`` with ``stats.url`` naming the account on the simulator (set in the
    environment too, which crawl processes inherit)."""
    monkeypatch.setenv("ROOMWATCH_STATS_URL", sim.stats_url(ACCOUNT))
    monkeypatch.setenv("ROOMWATCH_STATS_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ROOMWATCH_BACKOFF_BASE_SECONDS", "0.1")
    return load_config()


def _stats(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT account, num_followers, num_viewers, token_balance, votes_up, last_broadcast, "
        "time_online, job_id FROM room_stats ORDER BY observed_at"
    ).fetchall()


def test_an_answer_is_stored_with_unknowns_as_null(
    stats_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    sim.state.site.add_account(ACCOUNT, PASSWORD, followers=7)
    sim.state.stats.override(ACCOUNT, token_balance=350, votes_up=12)
    job = crawl(stats_env, db_url, "room_stats")
    assert job.status == "succeeded", job.error_message
    assert job.items == {"room_stats": 1}
    # Not broadcasting: the simulator sends -1 for the last broadcast and the time online.
    assert _stats(db) == [(ACCOUNT, 7, 0, 350, 12, None, None, job.job_id)]
    owner = db.execute(
        "SELECT followers, followers_source FROM v_person_current_state WHERE username = %s",
        [ACCOUNT],
    ).fetchone()
    assert owner == (7, "stats_api")
    _no_secret_in(job, stats_env, stats_env.stats.token)

    sim.state.stats.override(ACCOUNT, num_followers=-1)
    again = crawl(stats_env, db_url, "room_stats")
    assert again.status == "succeeded", again.error_message
    assert [row[1] for row in _stats(db)] == [7, None]  # history; -1 is unknown


def _no_secret_in(job: Job, config: Config, token: str) -> None:
    """The token (and so the URL) is nowhere the job is shown: args, error, stats, log."""
    log = (config.data_path / "logs" / f"job-{job.job_id}.log").read_text()
    if config.log_level == "DEBUG":
        assert "Crawled (" in log and "<GET ***>" in log  # the request was logged, redacted
    assert f"job {job.job_id}:" in log  # the crawl's own log, with its lines
    for shown in (json.dumps(job.args), job.error_message or "", json.dumps(job.stats), log):
        assert token not in shown
        assert "token=" + token not in shown


def test_a_refused_token_fails_the_job_clearly_and_the_token_shows_nowhere(
    stats_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim.state.site.add_account(ACCOUNT, PASSWORD, followers=3)
    monkeypatch.setenv("ROOMWATCH_STATS_URL", sim.stats_url(ACCOUNT, WRONG_TOKEN))
    monkeypatch.setenv("ROOMWATCH_LOG_LEVEL", "DEBUG")  # Scrapy logs every URL it fetches
    config = load_config()
    job = crawl(config, db_url, "room_stats")
    assert job.status == "failed"
    assert job.error_message == (
        "the Stats API refused the token (HTTP 401): it is wrong or was revoked; create one at "
        "https://chaturbate.com/statsapi/authtoken/ and set stats.url again"
    )
    assert sim.state.requests.count("/statsapi/") == 1  # refused: not retried
    assert _stats(db) == []
    _no_secret_in(job, config, WRONG_TOKEN)

    # A server error is retried, then fails naming the path only.
    good = sim.stats_url(ACCOUNT).split("token=")[1]
    sim.state.faults.set([FaultRule(prefix="/statsapi/", status=503, times=10)])
    monkeypatch.setenv("ROOMWATCH_STATS_URL", sim.stats_url(ACCOUNT))
    monkeypatch.setenv("ROOMWATCH_BACKOFF_MAX_RETRIES", "1")
    config = load_config()
    failed = crawl(config, db_url, "room_stats")
    assert failed.status == "failed"
    assert failed.error_message == ("the Stats API: /statsapi/: HTTP 503 after 1 retry")
    _no_secret_in(failed, config, good)


def test_without_stats_url_the_spider_refuses_to_start(crawl_env: Config, db_url: str) -> None:
    job = crawl(crawl_env, db_url, "room_stats")
    assert job.status == "failed"
    assert job.error_message == NOT_SET
    assert "stats.url (ROOMWATCH_STATS_URL) is not set" in NOT_SET


def test_a_count_less_followers_list_concludes_on_the_stats_apis_count(
    stats_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, followers_page_size=3, followers_count=False)
    log_in(sim, stats_env, db_url, online=0, offline=1, followers=7)
    names = sim.state.site.follows(ACCOUNT).followers

    sim.state.stats.override(ACCOUNT, num_followers=9)  # the site counts two more
    assert crawl(stats_env, db_url, "room_stats").status == "succeeded"
    mismatch = crawl(stats_env, db_url, "followers")
    assert mismatch.status == "failed"
    assert mismatch.error_message is not None
    assert mismatch.error_message.startswith(
        "the followers page shows no count and the Stats API's count (9, observed at "
    )
    assert mismatch.error_message.endswith(
        ") does not match the 7 names read (tolerance 0); follow state unchanged"
    )
    assert relation(db, "follower") == {}

    sim.state.stats.override(ACCOUNT, num_followers=None)  # the site's own figure: 7
    assert crawl(stats_env, db_url, "room_stats").status == "succeeded"
    job = crawl(stats_env, db_url, "followers")
    assert job.status == "succeeded", job.error_message
    assert relation(db, "follower") == dict.fromkeys(names, True)


def test_each_account_of_several_stats_urls_is_read_by_its_own_job(
    crawl_env: Config,
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    db: psycopg.Connection[Any],
) -> None:
    sim.state.site.add_account(ACCOUNT, PASSWORD, followers=7)
    sim.state.site.add_account("studio_b", PASSWORD, followers=40)
    urls = f"{sim.stats_url(ACCOUNT)} {sim.stats_url('studio_b')}"
    monkeypatch.setenv("ROOMWATCH_STATS_URL", urls)
    monkeypatch.setenv("ROOMWATCH_STATS_ALLOWED_HOSTS", "127.0.0.1")
    config = load_config()

    unnamed = crawl(config, db_url, "room_stats")
    assert unnamed.status == "failed"
    assert unnamed.error_message == (
        f"account: stats.url names several accounts ({ACCOUNT}, studio_b): "
        "name one with -a account=NAME"
    )
    studio = crawl(config, db_url, "room_stats", account="Studio_B")
    assert studio.status == "succeeded", studio.error_message
    assert studio.account == "studio_b"
    owner = crawl(config, db_url, "room_stats", account=ACCOUNT)
    assert owner.account == ACCOUNT
    assert [(row[0], row[1]) for row in _stats(db)] == [("studio_b", 40), (ACCOUNT, 7)]
    for job in (studio, owner):
        for token in (url.split("token=")[1] for url in urls.split()):
            assert token not in json.dumps(job.args) and token not in (job.error_message or "")


def test_the_one_stats_url_makes_the_job_its_accounts(
    stats_env: Config, db_url: str, sim: SimulatorServer
) -> None:
    sim.state.site.add_account(ACCOUNT, PASSWORD, followers=7)
    job = crawl(stats_env, db_url, "room_stats")
    assert job.status == "succeeded", job.error_message
    assert (job.account, job.args) == (ACCOUNT, {"account": ACCOUNT})
