"""The followers spider in real headless Chromium against the simulated site's followers pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from roomwatch.config import Config, load_config
from storage.follow_state import reconcile
from tests.spiders.follow_support import ACCOUNT, crawl, events, log_in, relation, switch
from upstream_sim.server import SimulatorServer


def test_two_crawls_detect_new_and_lost_followers(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    switch(sim, followers_page_size=3)
    log_in(sim, crawl_env, db_url, online=1, offline=1, followers=7)  # 3 pages
    site = sim.state.site
    first_names = list(site.follows(ACCOUNT).followers)

    first = crawl(crawl_env, db_url, "followers")
    assert first.status == "succeeded", first.error_message
    assert first.stats["roomwatch/pages"] == 3
    assert relation(db, "follower") == dict.fromkeys(first_names, True)
    assert events(db) == set()

    lost = first_names[4]
    now = [name for name in first_names if name != lost] + ["brand_new_fan"]
    site.set_follows(ACCOUNT, site.follows(ACCOUNT).with_followers(now))
    second = crawl(crawl_env, db_url, "followers")
    assert second.status == "succeeded", second.error_message
    assert events(db) == {(lost, "lost_follower"), ("brand_new_fan", "new_follower")}
    assert relation(db, "following") == {}  # the other relation is not touched


def test_a_failed_page_concludes_nothing(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    switch(sim, followers_page_size=3)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=8)
    reconcile(
        db,
        "follower",
        ["old_fan"],
        checked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        source="followers",
    )
    db.commit()
    switch(sim, fail_list="followers", fail_page=2, fail_mode="broken")
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "failed"
    assert job.error_message == "page 2 of the followers list: the page listed nobody"
    assert relation(db, "follower") == {"old_fan": True}
    assert events(db) == set()


@pytest.mark.parametrize("count_shown", [True, False], ids=["count-confirms", "no-count"])
def test_unknown_markup_falls_back_to_profile_links(
    count_shown: bool,
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The configured selector finds nothing: the page's markup "changed".
    monkeypatch.setenv("ROOMWATCH_FOLLOWERS_USERNAME_SELECTOR", ".no-such-list a")
    if not count_shown:
        monkeypatch.setenv("ROOMWATCH_FOLLOWERS_COUNT_SELECTOR", ".no-such-count")
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=5)
    names = set(sim.state.site.follows(ACCOUNT).followers)
    job = crawl(load_config(), db_url, "followers")  # with the selectors set above
    assert job.stats["roomwatch/pages_read_from_profile_links"] == 1
    observed = db.execute("SELECT username FROM persons").fetchall()
    assert {name for (name,) in observed} == names  # not the account's own link, no site paths
    if count_shown:
        assert job.status == "succeeded", job.error_message
        assert relation(db, "follower") == dict.fromkeys(names, True)
    else:
        assert job.status == "failed"
        assert job.error_message is not None
        assert "markup was not recognised" in job.error_message
        assert relation(db, "follower") == {}
