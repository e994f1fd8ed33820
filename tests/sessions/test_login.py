"""Login capture and the logged-in probe, in real headless Chromium against the simulated site."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, StorageState

from roomwatch.config import Config
from roomwatch.errors import ConfigError, SessionError
from roomwatch.logs import redact
from sessions.browser import chromium_args, find_chromium, launch_options, open_browser
from sessions.login import (
    Capture,
    LoginTimeouts,
    form_login,
    import_cookies,
    interactive_login,
    require_display,
)
from sessions.probe import (
    ProbeOutcome,
    ProbeResult,
    classify_page,
    probe_state,
    verify_state,
)
from tests.sessions.support import ACCOUNT, CHROMIUM, PASSWORD, make_config
from tests.support import set_switches
from upstream_sim.server import SimulatorServer
from upstream_sim.site.pages import CHALLENGE_PATH
from upstream_sim.state import SimulatorState

FAST = LoginTimeouts(navigation=15, interstitial=10, interactive=30)


def _cookie(state: StorageState, name: str) -> str | None:
    values = [c["value"] for c in state["cookies"] if c["name"] == name]
    return values[0] if values else None


def _login(config: Config, password: str = PASSWORD) -> Capture:
    return asyncio.run(form_login(config, ACCOUNT, password, timeouts=FAST))


def test_form_login_captures_a_logged_in_session(sim: SimulatorServer, config: Config) -> None:
    capture = _login(config)
    assert (capture.account, capture.method) == (ACCOUNT, "form")
    sessionid = _cookie(capture.state, "sessionid")
    assert sessionid is not None and len(sessionid) == 32
    assert sim.state.site.account_for_session(sessionid) is not None
    # The page's own form was submitted: CSRF pair accepted, "next" honoured.
    posts = [r for r in sim.state.requests.entries("/auth/login/") if r.method == "POST"]
    assert [r.status for r in posts] == [302]
    assert sim.state.requests.entries("/followed-cams/")[-1].status == 200

    outcome = asyncio.run(verify_state(config, capture.state))
    assert outcome.result is ProbeResult.VALID
    assert (outcome.account, outcome.followed_online, outcome.followed_total) == (ACCOUNT, 3, 12)


def test_wrong_password_is_refused(sim: SimulatorServer, config: Config) -> None:
    with pytest.raises(SessionError, match=f"^login refused for {ACCOUNT}") as caught:
        _login(config, "not the password")
    assert "not the password" not in str(caught.value)
    assert sim.state.site.session_ids() == []


def test_a_short_password_is_masked_in_logs(sim: SimulatorServer, config: Config) -> None:
    # A password a person chose is a secret however short (roomwatch.logs: ``always``).
    with pytest.raises(SessionError, match="login refused"):
        _login(config, "q9z!")
    assert "q9z!" not in redact("the password q9z! was sent")


def test_captcha_fails_fast_without_spending_an_attempt(
    sim: SimulatorServer, config: Config
) -> None:
    set_switches(sim, captcha_required=True)
    started = time.monotonic()
    with pytest.raises(SessionError) as caught:
        _login(config)
    # The check lasts 30 s: ending before it clears is the bound at work (Chromium's start on a
    # loaded machine can take several seconds, so no tighter figure is asserted).
    assert time.monotonic() - started < 25
    assert str(caught.value) == (
        "the site asks for a captcha: use roomwatch login --interactive or --import"
    )
    assert [r.method for r in sim.state.requests.entries("/auth/login/")] == ["GET"]


def test_second_factor_is_reported(sim: SimulatorServer, config: Config) -> None:
    set_switches(sim, two_factor_required=True)
    with pytest.raises(SessionError, match=r"second factor \(2FA\).*--interactive or --import"):
        _login(config)


def test_age_gate_and_interstitial_are_handled(sim: SimulatorServer, config: Config) -> None:
    set_switches(sim, age_gate=True, interstitial=True, interstitial_seconds=0.5)
    capture = _login(config)
    assert _cookie(capture.state, "sessionid") is not None
    assert _cookie(capture.state, "agreeterms") == "1"  # the overlay's button was clicked
    assert _cookie(capture.state, "cf_clearance") is not None
    challenged = [r.status for r in sim.state.requests.entries("/auth/login/")]
    assert challenged[0] == 403  # the first answer was the "Just a moment..." page
    assert sim.state.requests.count(CHALLENGE_PATH) == 1
    # The clearance travels with the session, so the probe passes without a new check.
    assert asyncio.run(verify_state(config, capture.state)).result is ProbeResult.VALID


def test_an_interstitial_that_never_clears_is_bounded(sim: SimulatorServer, config: Config) -> None:
    set_switches(sim, interstitial=True, interstitial_seconds=30)
    started = time.monotonic()
    with pytest.raises(SessionError, match=r'"Just a moment\.\.\." check did not clear within 2 s'):
        asyncio.run(form_login(config, ACCOUNT, PASSWORD, timeouts=LoginTimeouts(interstitial=2)))
    # The check lasts 30 s: ending before it clears is the bound at work (Chromium's start on a
    # loaded machine can take several seconds, so no tighter figure is asserted).
    assert time.monotonic() - started < 25


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("redirect", "redirected to the login page"),
        ("login_200", "the site served its login page (HTTP 200)"),
        ("anonymous", "the page shows no logged-in marker but a log-in link (anonymous page)"),
    ],
)
def test_probe_sees_expiry_each_way(
    sim: SimulatorServer, config: Config, mode: str, reason: str
) -> None:
    capture = _login(config)
    set_switches(sim, expiry_mode=mode)
    assert asyncio.run(verify_state(config, capture.state)).result is ProbeResult.VALID
    sim.state.site.expire_sessions(username=ACCOUNT)
    outcome = asyncio.run(verify_state(config, capture.state))
    assert (outcome.result, outcome.reason) == (ProbeResult.EXPIRED, reason)


def test_probe_of_an_odd_page_is_unknown_not_expired(sim: SimulatorServer, config: Config) -> None:
    # A picture where the page should be: neither logged in nor the login side.
    state = _login(config).state

    async def odd() -> ProbeOutcome:
        async with open_browser(config.browser) as browser:
            return await probe_state(browser, state, config.chaturbate.url, path="/riw/x.jpg")

    outcome = asyncio.run(odd())
    assert outcome.result is ProbeResult.UNKNOWN, outcome.reason
    assert outcome.reason.startswith("the page shows neither a logged-in marker nor a login form")


def test_probe_of_an_unreachable_site_is_unknown(tmp_path: Path) -> None:
    with SimulatorServer(SimulatorState()) as gone:
        url = gone.base_url
    config = make_config(url, tmp_path)
    state: StorageState = {"cookies": [], "origins": []}
    outcome = asyncio.run(verify_state(config, state, timeout=10))
    assert outcome.result is ProbeResult.UNKNOWN
    assert outcome.reason.startswith("cannot load")


def test_probe_reuses_one_browser_for_several_sessions(
    sim: SimulatorServer, config: Config
) -> None:
    valid = _login(config).state
    foreign = sim.state.site.open_session(ACCOUNT)
    sim.state.site.expire_sessions(sessionid=foreign)
    expired: StorageState = {
        "cookies": [{**valid["cookies"][0], "name": "sessionid", "value": foreign}],
        "origins": [],
    }

    async def both() -> list[ProbeResult]:
        async with open_browser(config.browser) as browser:
            return [
                (await probe_state(browser, state, config.chaturbate.url)).result
                for state in (valid, expired)
            ]

    assert asyncio.run(both()) == [ProbeResult.VALID, ProbeResult.EXPIRED]


def test_imported_cookies_open_the_logged_in_page(
    sim: SimulatorServer, config: Config, tmp_path: Path
) -> None:
    sessionid = sim.state.site.open_session(ACCOUNT)
    path = tmp_path / "cookies.txt"
    path.write_text(f"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsessionid\t{sessionid}\n")
    capture = import_cookies(config, path)
    assert capture.method == "import"
    assert asyncio.run(verify_state(config, capture.state)).result is ProbeResult.VALID


def test_interactive_login_without_a_display_fails_at_once(config: Config) -> None:
    started = time.monotonic()
    with pytest.raises(SessionError, match=r"--username U --password-stdin.*--import FILE"):
        asyncio.run(interactive_login(config, environ={}))
    assert time.monotonic() - started < 1
    require_display({"WAYLAND_DISPLAY": "wayland-0"})  # either display will do


def test_interactive_login_waits_for_the_person(sim: SimulatorServer, config: Config) -> None:
    async def person(page: Page) -> None:
        await asyncio.sleep(1)  # reading the page
        await page.fill("#id_username", ACCOUNT)
        await page.fill("#id_password", PASSWORD)
        await page.click("input[type=submit]")

    capture = asyncio.run(interactive_login(config, timeouts=FAST, headless=True, assist=person))
    assert (capture.account, capture.method) == (ACCOUNT, "interactive")
    assert _cookie(capture.state, "sessionid") in sim.state.site.session_ids(ACCOUNT)


def test_interactive_login_gives_up_in_time(sim: SimulatorServer, config: Config) -> None:
    started = time.monotonic()
    with pytest.raises(SessionError, match="no login within 2 s; nothing was saved"):
        asyncio.run(interactive_login(config, timeouts=LoginTimeouts(interactive=2), headless=True))
    # The check lasts 30 s: ending before it clears is the bound at work (Chromium's start on a
    # loaded machine can take several seconds, so no tighter figure is asserted).
    assert time.monotonic() - started < 25


def test_browser_discovery_and_flags(tmp_path: Path) -> None:
    assert find_chromium(CHROMIUM) == CHROMIUM
    assert find_chromium("") is not None  # a system Chromium is installed here
    options = launch_options(make_config("http://127.0.0.1:1", tmp_path).browser)
    assert options["executable_path"] == CHROMIUM
    assert options["headless"] is True
    assert options["args"] == chromium_args()
    with pytest.raises(ConfigError, match=r"browser.executable \(ROOMWATCH_BROWSER\)"):
        find_chromium(str(tmp_path / "no-such-chromium"))


def test_classify_page_rules() -> None:
    login = (
        "<html><head><title>Login, Chaturbate login</title></head><h1>Chaturbate Login</h1>"
        "<form method='post' action='/auth/login/'><input type='password' name='password'>"
    )
    moment = "<html><head><title>Just a moment...</title></head></html>"
    marker = "<span class='followed_counts' data-paction-name='FOLLOWED'>(75/1346)</span>"
    visitor = "<div id='header'><a href='/auth/login/'>Log In</a></div><h1>Free chat</h1>"
    url = "https://chaturbate.com/followed-cams/"
    cases = [
        ("https://chaturbate.com/auth/login/?next=/followed-cams/", 200, login, "expired"),
        ("https://chaturbate.com/auth/login/?next=/followed-cams/", 500, "", "expired"),
        (url, 403, moment, "unknown"),
        (url, 200, marker, "valid"),
        (url, 200, login, "expired"),
        (url, 200, "<form action='https://chaturbate.com/auth/login/?next=/'></form>", "expired"),
        (url, 200, "<input type='password' id='id_password'>", "expired"),
        (url, 200, visitor, "expired"),
        (url, 503, "<h1>Service unavailable</h1>", "unknown"),
        # One odd page is no proof the session died: these were all "expired" before.
        (url, 200, "<h1>Free chat</h1>", "unknown"),
        (url, 200, "", "unknown"),
        (url, 200, "<title>Server Error</title><h1>Server Error (500)</h1>", "unknown"),
        (url, 200, "<title>Login unavailable</title><p>Chaturbate Login</p>", "unknown"),
        (url, 500, login, "unknown"),
        (url, 502, visitor, "unknown"),
    ]
    for final_url, status, html, expected in cases:
        outcome = classify_page(final_url=final_url, status=status, html=html)
        assert outcome.result.value == expected, (final_url, status, html)
    valid = classify_page(final_url=url, status=200, html=marker)
    assert (valid.followed_online, valid.followed_total, valid.account) == (75, 1346, None)
    odd = marker.replace("(75/1346)", "(7²/99999999999)")  # no digits the database chokes on
    assert classify_page(final_url=url, status=200, html=odd).followed_total is None
