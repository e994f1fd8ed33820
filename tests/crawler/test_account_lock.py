"""One browser per account: a browser crawl holds its account's lock for its whole run, and a
second one for the same account does not start (real crawl processes, real Chromium)."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from scrapy import Spider
from scrapy.exceptions import CloseSpider
from scrapy.utils.test import get_crawler

from crawler.account_lock import AccountLock
from roomwatch.config import Config
from storage.browser_lock import account_lock_held, account_lock_key, take_account_lock
from storage.database import unlock
from storage.jobs import Job
from tests.spiders.follow_support import ACCOUNT, log_in
from tests.support import crawl, set_switches
from upstream_sim.server import SimulatorServer


def test_the_key_is_the_username_whatever_its_case() -> None:
    assert account_lock_key("Alice") == account_lock_key("alice")
    assert account_lock_key("alice") != account_lock_key("bob")
    assert account_lock_key("alice")[0] == account_lock_key("bob")[0]  # one namespace


def test_a_second_browser_crawl_of_the_account_fails_fast_and_starts_no_browser(
    crawl_env: Config, db_url: str, sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=4)
    log_in(sim, crawl_env, db_url, online=2, offline=2)
    with psycopg.connect(db_url, autocommit=True) as other:
        # Another crawl of the account, elsewhere, holds it.
        assert take_account_lock(other, ACCOUNT)
        busy = crawl(crawl_env, db_url, "followers")
        assert (busy.status, busy.finish_reason) == ("failed", "account_busy")
        assert busy.error_message == (
            f"another browser crawl of the account {ACCOUNT} is running (one browser per "
            "account); this one did not start"
        )
        assert sim.state.requests.count("/") == 0  # not one page asked for
        # Another account's crawl is not held up by it.
        assert take_account_lock(other, "bob")
        unlock(other, account_lock_key(ACCOUNT))
        free = crawl(crawl_env, db_url, "followed_cams")
        assert free.status == "succeeded", free.error_message


def test_the_crawl_holds_the_lock_for_its_whole_run_and_lets_it_go(
    crawl_env: Config, db_url: str, sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=2)
    log_in(sim, crawl_env, db_url, online=3, offline=3)
    done: list[Job] = []
    seen_held = False
    runner = threading.Thread(target=lambda: done.append(crawl(crawl_env, db_url, "followed_cams")))
    with psycopg.connect(db_url, autocommit=True) as conn:
        runner.start()
        while runner.is_alive():
            pages = sim.state.requests.count("/")
            if pages and account_lock_held(conn, ACCOUNT):
                seen_held = True  # while it was loading pages
            runner.join(0.05)
        assert done[0].status == "succeeded", done[0].error_message
        assert seen_held
        assert not account_lock_held(conn, ACCOUNT)
        assert take_account_lock(conn, ACCOUNT)  # free for the next crawl


def test_a_browser_crawl_given_no_account_is_refused_not_run_unlocked() -> None:
    spider = Spider(name="followers")  # no account argument
    with pytest.raises(CloseSpider) as closed:
        asyncio.run(AccountLock(get_crawler()).spider_opened(spider))
    assert closed.value.reason == "account_lock_failed"
