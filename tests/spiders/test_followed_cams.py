"""The followed_cams spider in real headless Chromium against the simulated site.

Lists are small (pages of 4 rooms) so each crawl is a few page loads; what is tested is what a
crawl concludes: follow state and events only from a complete crawl, nothing from a crawl that
lost its session or a page, and the session's status from the probe.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from agent.runner import CrawlRunner
from roomwatch.config import Config, load_config
from roomwatch.errors import JobError
from sessions.store import save_session
from storage.follow_state import reconcile
from storage.jobs import Job, request_cancel
from tests.spiders.follow_support import (
    ACCOUNT,
    MARKER_VARIABLE,
    PASSWORD,
    events,
    log_in,
    marked_processes,
    relation,
    session_status,
    wait_for,
    wait_for_first_page,
)
from tests.support import cookie_state, crawl, set_switches
from upstream_sim.server import SimulatorServer
from upstream_sim.site.follow_lists import FollowLists


def _observed(db: psycopg.Connection[Any]) -> dict[str, bool]:
    rows = db.execute(
        "SELECT p.username, l.online FROM person_source_latest l JOIN persons p USING (person_id)"
        " WHERE l.source = 'followed_cams'"
    )
    return dict(rows.fetchall())


def test_two_crawls_detect_follows_and_unfollows(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=4)
    log_in(sim, crawl_env, db_url, online=5, offline=7)
    site = sim.state.site
    first_names = site.follows(ACCOUNT).followed_names()

    first = crawl(crawl_env, db_url, "followed_cams")
    assert first.status == "succeeded", first.error_message
    assert relation(db, "following") == dict.fromkeys(first_names, True)
    assert events(db) == set()  # the first complete crawl is the baseline
    assert first.items == {
        "session_checks": 1,
        "followed_rooms": 12,
        "complete_lists": 1,
    }
    assert first.stats["roomwatch/pages_read_from_json"] == 4  # 2 online + 2 offline pages
    online = set(site.follows(ACCOUNT).followed_names()[:5])
    assert _observed(db) == {name: name in online for name in first_names}
    assert sim.state.requests.count("/riw/") == 0  # thumbnails blocked
    assert db.execute("SELECT status FROM login_sessions").fetchone() == ("valid",)

    gone, moved = first_names[0], first_names[6]
    lists = (
        site.follows(ACCOUNT).unfollow(gone).unfollow(moved).follow("newlyfollowed", online=False)
    )
    site.set_follows(ACCOUNT, lists.follow(moved, online=True))
    # The second time, the site puts its age gate and its "Just a moment..." check first.
    set_switches(sim, age_gate=True, interstitial=True, interstitial_seconds=0.3)
    second = crawl(crawl_env, db_url, "followed_cams")
    assert second.status == "succeeded", second.error_message
    assert events(db) == {(gone, "unfollowed"), ("newlyfollowed", "followed")}
    state = relation(db, "following")
    assert (state[gone], state["newlyfollowed"], state[moved]) == (False, True, True)
    job_ids = db.execute("SELECT DISTINCT job_id, source FROM follow_events").fetchall()
    assert job_ids == [(second.job_id, "followed_cams")]


def test_server_rendered_lists_are_read_from_the_page(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=3, server_rendered=True)  # the old site: no room-list call to catch
    log_in(sim, crawl_env, db_url, online=2, offline=4)
    job = crawl(crawl_env, db_url, "followed_cams")
    assert job.status == "succeeded", job.error_message
    assert job.stats["roomwatch/pages_read_from_dom"] == 3
    followed = sim.state.site.follows(ACCOUNT).followed_names()
    assert relation(db, "following") == dict.fromkeys(followed, True)
    assert _observed(db) == {name: name in followed[:2] for name in followed}


def test_the_header_count_decides_within_the_tolerance(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_in(sim, crawl_env, db_url, online=2, offline=3)
    site = sim.state.site
    lists = site.follows(ACCOUNT)
    # A room listed online and offline (it went live while the lists were read): the header
    # counts 5 rooms, the lists hold 4 different ones.
    twice = msgspec.structs.replace(lists.offline[0], username=lists.online[0].username)
    site.set_follows(ACCOUNT, FollowLists(lists.online, (twice, *lists.offline[1:]), ()))
    strict = crawl(crawl_env, db_url, "followed_cams")
    assert strict.status == "failed"
    assert strict.error_message == (
        "incomplete: read 4 followed rooms but the site's header counts 5 (tolerance 0); "
        "follow state unchanged"
    )
    assert relation(db, "following") == {}
    monkeypatch.setenv("ROOMWATCH_FOLLOWED_CAMS_COUNT_TOLERANCE", "1")
    lenient = crawl(load_config(), db_url, "followed_cams")  # the config is read once
    assert lenient.status == "succeeded", lenient.error_message
    assert len(relation(db, "following")) == 4


def _preset_following(db: psycopg.Connection[Any], names: list[str]) -> dict[str, bool]:
    reconcile(
        db,
        "following",
        names,
        account=ACCOUNT,
        checked_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        source="followed_cams",
    )
    db.commit()
    return relation(db, "following")


@pytest.mark.parametrize(
    "how",
    [
        {"expiry_mode": "redirect"},
        {"expiry_mode": "login_200"},
        {"expiry_mode": "anonymous"},
        {"expire_at_list_call": 2},  # dies under the crawl: the API returns the public list
    ],
    ids=["redirect", "login-page-200", "anonymous-page", "anonymous-list"],
)
def test_an_expired_session_concludes_nothing(
    how: dict[str, Any],
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    set_switches(sim, page_size=4)
    log_in(sim, crawl_env, db_url, online=3, offline=6)
    before = _preset_following(
        db, ["someone_else", *sim.state.site.follows(ACCOUNT).followed_names()[1:]]
    )
    set_switches(sim, **how)
    if "expiry_mode" in how:
        sim.state.site.expire_sessions(username=ACCOUNT)

    job = crawl(crawl_env, db_url, "followed_cams")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("session expired: capture a new one")
    assert relation(db, "following") == before
    assert events(db) == set()
    assert session_status(db) == "expired"
    assert "complete_lists" not in job.items


@pytest.mark.parametrize("mode", ["api_500", "broken"])
def test_a_failed_page_3_of_5_concludes_nothing(
    mode: str, crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=3)
    log_in(sim, crawl_env, db_url, online=2, offline=14)  # offline: 5 pages of 3
    before = _preset_following(db, ["someone_else"])
    set_switches(sim, fail_list="offline", fail_page=3, fail_mode=mode)

    job = crawl(crawl_env, db_url, "followed_cams")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("page 3 of the offline list: ")
    assert relation(db, "following") == before  # nobody unfollowed, nobody followed
    assert events(db) == set()
    assert len(_observed(db)) == 2 + 6  # the pages read are kept as observations
    assert job.stats["roomwatch/page_retries"] == 1
    assert session_status(db) == "valid"


def test_without_a_judgement_or_a_session_nothing_is_marked(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    no_session = crawl(crawl_env, db_url, "followed_cams")
    assert no_session.status == "failed"
    assert no_session.error_message is not None
    assert no_session.error_message.startswith("no usable login session: capture one")

    log_in(sim, crawl_env, db_url, online=1, offline=1)
    set_switches(sim, fail_list="online", fail_page=1, fail_mode="http_500")
    job = crawl(crawl_env, db_url, "followed_cams")
    assert job.status == "failed"
    assert job.error_message == (
        "cannot tell whether the session is logged in (page 1 of the online list): HTTP 500"
    )
    assert session_status(db) == "unknown"  # a site error says nothing about the session


def test_no_cookie_value_reaches_a_log_or_the_job(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "kn0wncrawlc00kie0never0l0gged01"
    monkeypatch.setenv("ROOMWATCH_LOG_LEVEL", "DEBUG")
    set_switches(sim, page_size=4)
    log_in(sim, crawl_env, db_url, online=2, offline=3, sessionid=secret)
    job = crawl(load_config(), db_url, "followed_cams")  # at DEBUG
    assert job.status == "succeeded", job.error_message
    logs = list((crawl_env.data_path / "logs").glob("*"))
    assert logs
    text = "".join(path.read_text(errors="replace") for path in logs)
    assert "Crawled (200)" in text or "playwright" in text  # the log is a real DEBUG log
    assert secret not in text
    row = db.execute("SELECT to_jsonb(j)::text FROM crawl_jobs j").fetchone()
    assert row is not None and secret not in row[0]
    for path in Path(crawl_env.data_path).rglob("*"):
        if path.is_file() and path.suffix != ".session":
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("how", ["cancel", "sigkill"])
def test_no_chromium_outlives_a_stopped_crawl(
    how: str,
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER_VARIABLE, marker)  # inherited by the crawl and its browser
    log_in(sim, crawl_env, db_url, online=2, offline=2)
    set_switches(sim, interstitial=True, interstitial_seconds=30)  # the crawl waits in the browser
    runner = CrawlRunner(crawl_env, db_url)
    job_id = runner.submit("followed_cams", {}, "cli").job_id
    ended: list[Job] = []
    supervisor = threading.Thread(target=lambda: ended.append(runner.run(job_id)))
    supervisor.start()
    try:
        wait_for_first_page(sim, marker)
        if how == "cancel":
            request_cancel(db, job_id)  # the runner stops the process tree
        else:
            row = db.execute("SELECT pid FROM crawl_jobs WHERE job_id = %s", [job_id]).fetchone()
            assert row is not None
            os.kill(row[0], signal.SIGKILL)  # a crash: nothing in the crawl gets to clean up
    finally:
        supervisor.join(60)
    assert ended and ended[0].status == ("cancelled" if how == "cancel" else "failed")
    wait_for(lambda: not marked_processes(marker), 15, "the crawl's processes to end")


def test_a_mass_unfollow_is_held_until_confirmed(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    set_switches(sim, page_size=10)
    log_in(sim, crawl_env, db_url, online=2, offline=8)
    site = sim.state.site
    names = site.follows(ACCOUNT).followed_names()
    assert crawl(crawl_env, db_url, "followed_cams").status == "succeeded"  # the baseline
    lists = site.follows(ACCOUNT)
    for name in names[3:]:
        lists = lists.unfollow(name)
    site.set_follows(ACCOUNT, lists)

    held = crawl(crawl_env, db_url, "followed_cams")
    assert held.status == "failed"
    assert held.error_message == (
        "followed rooms: 7 of 10 would be marked unfollowed (70 % > 20 %, more than 5); held, "
        "not concluded; run `roomwatch crawl followed_cams -a confirm_loss=true` to confirm"
    )
    assert relation(db, "following") == dict.fromkeys(names, True)
    assert events(db) == set()
    assert len(_observed(db)) == 10  # what the lists showed is still kept

    runner = CrawlRunner(crawl_env, db_url)  # confirmed as the API sends it: a JSON true
    confirmed = runner.run(runner.submit("followed_cams", {"confirm_loss": True}, "api").job_id)
    assert confirmed.status == "succeeded", confirmed.error_message
    assert events(db) == {(name, "unfollowed") for name in names[3:]}


def test_each_account_s_crawl_reads_its_own_session_and_lists(
    crawl_env: Config, db_url: str, db: psycopg.Connection[Any], sim: SimulatorServer
) -> None:
    log_in(sim, crawl_env, db_url, online=2, offline=1)  # alice's, stored first
    site = sim.state.site
    site.add_account("bob", PASSWORD, followed_online=1, followed_total=2)
    with psycopg.connect(db_url) as conn:
        save_session(
            conn, crawl_env, cookie_state(site.open_session("bob")), account="bob", method="import"
        )
    bob = crawl(crawl_env, db_url, "followed_cams", account="bob")
    assert bob.status == "succeeded", bob.error_message
    assert bob.account == "bob"
    alice = crawl(crawl_env, db_url, "followed_cams", account="ALICE")
    assert (alice.status, alice.account) == ("succeeded", "alice")
    rows = db.execute(
        "SELECT a.account, p.username FROM account_persons a JOIN persons p USING (person_id) "
        "WHERE a.following"
    ).fetchall()
    assert {(a, n) for a, n in rows} == {
        *(("alice", n) for n in site.follows(ACCOUNT).followed_names()),
        *(("bob", n) for n in site.follows("bob").followed_names()),
    }
    with pytest.raises(JobError, match="no account 'carol' here"):
        crawl(crawl_env, db_url, "followed_cams", account="carol")
    db.execute("INSERT INTO accounts (account) VALUES ('dan')")  # known, but no session
    db.commit()
    nobody = crawl(crawl_env, db_url, "followed_cams", account="dan")
    assert nobody.status == "failed"
    assert "no usable login session of dan" in (nobody.error_message or "")
