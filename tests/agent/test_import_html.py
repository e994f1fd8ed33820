"""``roomwatch import-html``: saved pages in, observations always, follow state only if complete.

The pages are the simulator's own, saved the way a browser saves them (the followed-cams page
rendered by real Chromium, its JS list included), plus a real saved page from the samples.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import async_playwright

from agent.cli import main
from roomwatch.config import load_config
from sessions.browser import launch_options
from tests.spiders.follow_support import ACCOUNT, PASSWORD, events, relation
from tests.support import as_url, cookie_state, store_stats_count
from upstream_sim.server import SimulatorServer
from upstream_sim.site.list_pages import followers_page
from upstream_sim.state import SimulatorState

SAMPLES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment ``roomwatch`` reads: this test's database and a data dir."""
    monkeypatch.setenv("ROOMWATCH_DATABASE_URL", as_url(db_url))
    monkeypatch.setenv("ROOMWATCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _import(capsys: pytest.CaptureFixture[str], kind: str, *files: Path) -> tuple[int, str]:
    status = main(["import-html", "--kind", kind, *map(str, files)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


async def _save_rendered(sim: SimulatorServer, paths: list[str]) -> list[str]:
    sessionid = sim.state.site.open_session(ACCOUNT)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options(load_config({}).browser))
        try:
            context = await browser.new_context(storage_state=cookie_state(sessionid))
            page = await context.new_page()
            saved = []
            for path in paths:
                await page.goto(sim.base_url + path)
                await page.wait_for_selector("#roomlist_root[data-state=loaded]")
                saved.append(await page.content())
            return saved
        finally:
            await browser.close()


def test_saved_followed_cams_pages(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorServer(SimulatorState()) as sim:
        sim.state.site.add_account(ACCOUNT, PASSWORD, followed_online=2, followed_total=5)
        online, offline = asyncio.run(
            _save_rendered(sim, ["/followed-cams/", "/followed-cams/offline/"])
        )
        followed = sim.state.site.follows(ACCOUNT).followed_names()
    (cli_env / "online.html").write_text(online)
    (cli_env / "offline.html").write_text(offline)

    # The online list alone is part of the list: recorded, but nobody is concluded unfollowed.
    status, out = _import(capsys, "following", cli_env / "online.html")
    assert status == 0
    assert "partial: 2 followed rooms on page 1 of 1, the header counts 5" in out
    assert relation(db, "following") == {}
    live = db.execute(
        "SELECT count(*) FROM person_source_latest WHERE source = 'html_import' AND online"
    ).fetchone()
    assert live == (2,)

    status, out = _import(capsys, "following", cli_env / "online.html", cli_env / "offline.html")
    assert status == 0, out
    assert "complete: 5 followed rooms" in out
    assert relation(db, "following") == dict.fromkeys(followed, True)


def test_one_page_of_a_multi_page_followers_list_is_partial(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = SimulatorState()
    account = state.site.add_account(ACCOUNT, PASSWORD, followers=7)
    pages = []
    for number in (1, 2):
        path = cli_env / f"followers-{number}.html"
        path.write_text(
            followers_page(account, page=number, page_size=4, age_gate=False, broken=False)
        )
        pages.append(path)

    status, out = _import(capsys, "followers", pages[1])
    assert status == 0
    assert "partial: page(s) 1 of 2 not given" in out
    assert relation(db, "follower") == {}
    assert db.execute("SELECT count(*) FROM persons").fetchone() == (3,)

    status, out = _import(capsys, "followers", *pages)
    assert "complete: 7 followers" in out
    assert relation(db, "follower") == dict.fromkeys(account.follows.followers, True)

    # A later complete import with one follower fewer is an event.
    dropped, *kept = account.follows.followers
    account.follows = account.follows.with_followers(kept)
    only = cli_env / "followers-all.html"
    only.write_text(followers_page(account, page=1, page_size=50, age_gate=False, broken=False))
    status, out = _import(capsys, "followers", only)
    assert "0 added, 1 removed" in out
    assert events(db) == {(dropped, "lost_follower")}


def test_a_real_saved_page_and_bad_files(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # A saved room page: its header dropdown lists the 75 online followed rooms, no counts.
    status, out = _import(
        capsys, "following", SAMPLES / "cb_html_2026-01_loggedin_followed_dropdown.html"
    )
    assert status == 0
    assert "following: 75 persons recorded; partial: no (online/total) count" in out
    assert relation(db, "following") == {}

    login = cli_env / "login.html"
    login.write_text("<html><body><h1>Chaturbate Login</h1><input id='id_password'></body></html>")
    status, out = _import(capsys, "following", login)
    assert status == 1
    assert f"{login}: this is the login page" in out
    status, out = _import(capsys, "followers", cli_env / "missing.html")
    assert status == 1
    assert "missing.html: cannot read it" in out


def _followers_file(folder: Path, name: str, followers: list[str], **saved: Any) -> Path:
    account = SimulatorState().site.add_account(ACCOUNT, PASSWORD)
    account.follows = account.follows.with_followers(followers)
    path = folder / name
    path.write_text(followers_page(account, page=1, page_size=50, age_gate=False, broken=False))
    if saved:
        moment = dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(**saved)
        os.utime(path, (moment.timestamp(), moment.timestamp()))
    return path


def test_a_page_saved_before_the_last_check_is_refused(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fans = [f"fan_{n}" for n in range(4)]
    current = _followers_file(cli_env, "now.html", fans, days=10)
    assert _import(capsys, "followers", current)[0] == 0
    checked = db.execute("SELECT max(follower_checked_at) FROM persons").fetchone()
    assert checked == (dt.datetime(2026, 3, 11, tzinfo=dt.UTC),)  # the file's time, not now

    # A page saved weeks before (its file time says so) would bring back who left since.
    old = _followers_file(cli_env, "old.html", ["gone_fan", *fans], days=-20)
    status, out = _import(capsys, "followers", old)
    assert status == 1
    assert out.strip() == (
        "roomwatch: the page was saved at 2026-02-09T00:00:00Z, before the last check of the "
        "followers list at 2026-03-11T00:00:00Z: importing it would roll follow state back; "
        "save the page again"
    )
    assert relation(db, "follower") == dict.fromkeys(fans, True)
    assert db.execute("SELECT count(*) FROM persons").fetchone() == (4,)  # nothing recorded

    # --saved-at overrides the file's time; the future is refused too.
    status, out = main_args(capsys, old, "--saved-at", "2999-01-01T00:00:00+00:00")
    assert status == 1
    assert "saved_at: 2999-01-01T00:00:00Z is in the future" in out
    status, out = main_args(capsys, old, "--saved-at", "2026-03-12T08:00:00+02:00")
    assert status == 0, out
    assert relation(db, "follower") == dict.fromkeys(["gone_fan", *fans], True)


def main_args(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str]:
    status = main(["import-html", "--kind", "followers", *extra, str(path)])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_an_import_that_would_lose_most_followers_is_held(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fans = [f"fan_{n}" for n in range(10)]
    assert _import(capsys, "followers", _followers_file(cli_env, "all.html", fans, days=1))[0] == 0
    few = _followers_file(cli_env, "few.html", fans[:2], days=2)
    status, out = _import(capsys, "followers", few)
    assert status == 1
    assert out.strip() == (
        "roomwatch: followers: 8 of 10 would be marked lost (80 % > 20 %, more than 5); held, not "
        "concluded; import again with --confirm-loss to confirm"
    )
    assert relation(db, "follower") == dict.fromkeys(fans, True)
    assert events(db) == set()

    status, out = main_args(capsys, few, "--confirm-loss")
    assert status == 0, out
    assert "0 added, 8 removed" in out
    assert events(db) == {(fan, "lost_follower") for fan in fans[2:]}


def test_an_empty_list_needs_a_count_of_0_or_the_empty_message(
    cli_env: Path, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    header = "<div id='user_information'><a class='username'>alice</a></div>"
    silent = cli_env / "silent.html"
    silent.write_text(f"<html><body>{header}<div id='main'><h1>Followers</h1></div></body></html>")
    status, out = _import(capsys, "followers", silent)
    assert status == 1
    assert "no followers found: not a followers page" in out

    empty = cli_env / "empty.html"
    empty.write_text(
        f"<html><body>{header}<div id='main'><h1>Followers</h1>"
        "<p>You don't have any followers yet.</p></div></body></html>"
    )
    status, out = _import(capsys, "followers", empty)
    assert status == 0, out
    assert "complete: 0 followers" in out


def test_a_followers_page_without_a_count_needs_the_stats_apis_count(
    cli_env: Path, db_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    account = SimulatorState().site.add_account(ACCOUNT, PASSWORD, followers=4)
    path = cli_env / "followers.html"
    path.write_text(
        followers_page(
            account, page=1, page_size=50, age_gate=False, broken=False, count_shown=False
        )
    )
    status, out = _import(capsys, "followers", path)  # saved now (the file's time)
    assert status == 0
    assert out.strip() == (
        f"followers: 4 persons recorded; partial: the followers page shows no count, and no "
        f"Stats API follower count of {ACCOUNT} was observed within 10 minutes of "
        f"{_iso(path)}, when the pages were saved: set stats.url, or run room_stats; follow "
        "state unchanged"
    )
    assert relation(db, "follower") == {}

    store_stats_count(db_url, ACCOUNT, 4)
    status, out = _import(capsys, "followers", path)
    assert status == 0
    assert (
        "followers: 4 persons recorded; complete: 4 followers, as the Stats API counts; first "
        "check of this list: state set, no events\n"
    ) in out
    assert relation(db, "follower") == dict.fromkeys(account.follows.followers, True)


def _iso(path: Path) -> str:
    moment = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
