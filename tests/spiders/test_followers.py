"""The followers spider in real headless Chromium against the simulated site's followers pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from agent.runner import CrawlRunner
from roomwatch.config import Config, load_config
from storage.alerts import read_alerts
from storage.follow_state import reconcile
from storage.jobs import Job
from storage.status import read_status
from tests.spiders.follow_support import ACCOUNT, events, log_in, relation
from tests.support import crawl, set_switches, store_stats_count
from upstream_sim.server import SimulatorServer


def test_two_crawls_detect_new_and_lost_followers(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, followers_page_size=3)
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
    set_switches(sim, followers_page_size=3)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=8)
    reconcile(
        db,
        "follower",
        ["old_fan"],
        account=ACCOUNT,
        checked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        source="followers",
    )
    db.commit()
    set_switches(sim, fail_list="followers", fail_page=2, fail_mode="broken")
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "failed"
    assert job.error_message == "page 2 of the followers list: the page listed nobody"
    assert relation(db, "follower") == {"old_fan": True}
    assert events(db) == set()


@pytest.mark.parametrize(
    "count", ["page", "stats", None], ids=["page-count", "stats-count", "none"]
)
def test_unknown_markup_falls_back_to_profile_links(
    count: str | None,
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The configured selectors find nothing: the page's markup "changed".
    monkeypatch.setenv("ROOMWATCH_FOLLOWERS_USERNAME_SELECTOR", ".no-such-list a")
    monkeypatch.setenv("ROOMWATCH_FOLLOWERS_COUNT_SELECTOR", ".no-such-count")
    # Shown: the page's count is found by its class, not the selector.
    set_switches(sim, followers_count=count == "page")
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=5)
    names = set(sim.state.site.follows(ACCOUNT).followers)
    if count == "stats":
        store_stats_count(db_url, ACCOUNT, 5)
    job = crawl(load_config(), db_url, "followers")  # with the selectors set above
    assert job.stats["roomwatch/pages_read_from_profile_links"] == 1
    observed = db.execute("SELECT username FROM persons WHERE username <> %s", [ACCOUNT])
    # Not the account's own link, no site paths.
    assert {name for (name,) in observed.fetchall()} == names
    if count is not None:  # a count confirms the guess
        assert job.status == "succeeded", job.error_message
        assert relation(db, "follower") == dict.fromkeys(names, True)
    else:
        assert job.status == "failed"
        assert job.error_message == (
            f"the followers page shows no count, and no Stats API follower count of {ACCOUNT} "
            "was observed in the last 10 minutes: set stats.url, or run room_stats; follow "
            "state unchanged"
        )
        assert relation(db, "follower") == {}


def _crawl_with(config: Config, db_url: str, **args: Any) -> Job:
    runner = CrawlRunner(config, db_url)
    return runner.run(runner.submit("followers", args, "cli").job_id)


def _preset(db: psycopg.Connection[Any], names: list[str]) -> None:
    reconcile(
        db,
        "follower",
        names,
        account=ACCOUNT,
        checked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        source="followers",
    )
    db.commit()


def test_a_page_listing_nobody_without_a_count_concludes_nothing(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Logged in, nobody listed, no count shown (markup changed, or a page cut short): that is
    # no proof of "no followers". Three followers: few enough that only this rule stops it.
    set_switches(sim, followers_count=False)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=0)
    _preset(db, ["fan_a", "fan_b", "fan_c"])
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "failed"
    assert job.error_message == (
        "page 1 of the followers list: the page listed nobody and shows neither a follower "
        "count of 0 nor the site's empty-list message; follow state unchanged"
    )
    assert relation(db, "follower") == dict.fromkeys(["fan_a", "fan_b", "fan_c"], True)
    assert events(db) == set()


def test_an_explicit_count_of_0_is_an_empty_list(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=0)  # "Followers (0)"
    _preset(db, ["fan_a", "fan_b"])
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "succeeded", job.error_message
    assert relation(db, "follower") == {"fan_a": False, "fan_b": False}
    assert events(db) == {("fan_a", "lost_follower"), ("fan_b", "lost_follower")}


def test_a_mass_loss_is_held_until_the_user_confirms_it(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, followers_page_size=5)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=10)
    site = sim.state.site
    names = list(site.follows(ACCOUNT).followers)
    assert crawl(crawl_env, db_url, "followers").status == "succeeded"  # the baseline
    site.set_follows(ACCOUNT, site.follows(ACCOUNT).with_followers(names[:2]))

    held = crawl(crawl_env, db_url, "followers")
    assert held.status == "failed"
    assert held.error_message == (
        "followers: 8 of 10 would be marked lost (80 % > 20 %, more than 5); held, not "
        "concluded; run `roomwatch crawl followers -a confirm_loss=true` to confirm"
    )
    assert relation(db, "follower") == dict.fromkeys(names, True)
    assert events(db) == set()
    [alert] = read_alerts(db, 3)
    assert (alert.kind, alert.subject) == ("follow_change_held", "followers")
    assert alert.key == f"follow_change_held:followers:{held.job_id}"
    assert "confirm_loss=true" in alert.message
    assert read_status(db, "test", load_config({})).alerts == [
        alert
    ]  # /status and `roomwatch status` show it

    typo = _crawl_with(crawl_env, db_url, confirm_loss="yes")
    assert typo.status == "failed"
    assert typo.error_message == "confirm_loss: expected true or false"
    assert relation(db, "follower") == dict.fromkeys(names, True)

    confirmed = _crawl_with(crawl_env, db_url, confirm_loss="true")
    assert confirmed.status == "succeeded", confirmed.error_message
    assert events(db) == {(name, "lost_follower") for name in names[2:]}
    assert read_alerts(db, 3) == []  # a successful crawl clears it


def test_a_table_with_the_count_in_its_heading_and_div_pagination_is_read_whole(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    # The markup of an independent fake of the site: a table of profile links under
    # "Followers (145)", 50 a page, paged by div.pagination links with <a class="next">.
    set_switches(sim, followers_markup="table")
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=145)
    names = sim.state.site.follows(ACCOUNT).followers
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "succeeded", job.error_message
    assert job.stats["roomwatch/pages"] == 3
    assert job.stats["roomwatch/followers_read"] == 145
    assert relation(db, "follower") == dict.fromkeys(names, True)


@pytest.mark.parametrize(
    ("followers", "pages"),
    [(7, 3), (6, 3)],
    ids=["last-page-short", "last-page-full-then-empty"],
)
def test_without_a_count_the_list_ends_at_a_short_or_empty_page(
    followers: int,
    pages: int,
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    set_switches(sim, followers_page_size=3, followers_count=False)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=followers)
    names = sim.state.site.follows(ACCOUNT).followers
    store_stats_count(db_url, ACCOUNT, followers)  # what confirms the list: paging cannot
    job = crawl(crawl_env, db_url, "followers")
    assert job.status == "succeeded", job.error_message
    assert job.stats["roomwatch/pages"] == pages  # 3, 3, 1; or 3, 3 and an empty page 3
    assert relation(db, "follower") == dict.fromkeys(names, True)


def test_a_404_past_the_last_full_page_ends_a_count_less_list(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The table markup read with a configured selector, no count, two full pages of 50: only
    # page 3, answered 404 as a Django paginator does past the end, says the list ended.
    monkeypatch.setenv("ROOMWATCH_FOLLOWERS_USERNAME_SELECTOR", "section.fans td a")
    set_switches(sim, followers_markup="table", followers_count=False)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=100)
    names = sim.state.site.follows(ACCOUNT).followers
    store_stats_count(db_url, ACCOUNT, 100)
    job = crawl(load_config(), db_url, "followers")  # with the selector set above
    assert job.status == "succeeded", job.error_message
    assert job.stats["roomwatch/pages"] == 3
    assert "roomwatch/pages_read_from_profile_links" not in job.stats
    assert relation(db, "follower") == dict.fromkeys(names, True)


def test_without_a_count_only_a_recent_stats_count_within_the_tolerance_concludes(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOMWATCH_FOLLOWERS_COUNT_TOLERANCE", "2")
    config = load_config()
    set_switches(sim, followers_page_size=3, followers_count=False)
    log_in(sim, config, db_url, online=0, offline=1, followers=7)  # a short last page
    names = sim.state.site.follows(ACCOUNT).followers
    _preset(db, ["old_fan"])

    store_stats_count(db_url, ACCOUNT, 7, age=dt.timedelta(minutes=11))  # too old
    stale = crawl(config, db_url, "followers")
    assert stale.status == "failed"
    assert stale.error_message == (
        f"the followers page shows no count, and no Stats API follower count of {ACCOUNT} was "
        "observed in the last 10 minutes: set stats.url, or run room_stats; follow state "
        "unchanged"
    )
    assert relation(db, "follower") == {"old_fan": True}
    assert events(db) == set()

    store_stats_count(db_url, ACCOUNT, 9, age=dt.timedelta(minutes=8))  # 7 read, within 2
    job = crawl(config, db_url, "followers")
    assert job.status == "succeeded", job.error_message
    assert relation(db, "follower") == dict.fromkeys(names, True) | {"old_fan": False}
    assert events(db) == {(name, "new_follower") for name in names} | {("old_fan", "lost_follower")}


def test_a_stats_url_of_another_account_cannot_confirm_the_list(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOMWATCH_STATS_URL", sim.stats_url("someone_else"))
    monkeypatch.setenv("ROOMWATCH_STATS_ALLOWED_HOSTS", "127.0.0.1")
    set_switches(sim, followers_count=False)
    log_in(sim, crawl_env, db_url, online=0, offline=1, followers=2)
    store_stats_count(db_url, "someone_else", 2)
    job = crawl(load_config(), db_url, "followers")
    assert job.status == "failed"
    assert job.error_message == (
        f"the followers page shows no count, and stats.url names another account "
        f"(someone_else) than the session's ({ACCOUNT}): its follower count cannot confirm this "
        "list; follow state unchanged"
    )
    assert relation(db, "follower") == {}
