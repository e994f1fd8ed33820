"""Capturing a login session: headless form login, a visible browser, or a cookie file.

* **Form login** (``--username U --password-stdin``) does what a person does in the browser:
  open ``/auth/login/?next=/followed-cams/``, wait out a "Just a moment..." check, close the
  age-terms overlay, fill ``#id_username``/``#id_password``, tick "remember me", and submit the
  page's own form (so the CSRF token and ``next`` go with it). It succeeds when a ``sessionid``
  cookie is set and the logged-in marker shows. A captcha on the login page fails at once,
  before any attempt is spent; a captcha or second factor after submitting fails with a pointer
  to ``--interactive``/``--import``; a refused password fails with "login refused". Every wait
  is bounded (:class:`LoginTimeouts`), so nothing hangs.
* **Interactive** (``--interactive``) opens a visible Chromium on the login page and waits,
  bounded, until a ``sessionid`` cookie and the logged-in marker appear (the person solves any
  captcha or second factor). Without a display it fails at once and names the alternatives.
* **Import** (``--import FILE``) parses a cookie file (``sessions.imports``).

The password is registered as a secret before anything else, and only ever typed into the page.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import msgspec
from playwright.async_api import BrowserContext, Page, StorageState
from playwright.async_api import Error as PlaywrightError

from formats.site import (
    CAPTCHA_SELECTOR,
    LOGGED_IN_SELECTOR,
    LOGIN_ERROR_SELECTOR,
    LOGIN_FORM_SELECTOR,
    LOGIN_PATH,
    PROBE_PATH,
    TWO_FACTOR_SELECTOR,
)
from roomwatch.config import Config
from roomwatch.errors import SessionError
from roomwatch.logs import register_secret
from sessions.browser import open_browser
from sessions.imports import SESSION_COOKIE, read_cookie_file
from sessions.pages import handle_age_gate, shows, site_page, wait_out_interstitial
from sessions.probe import ProbeResult, classify_page
from storage.login_sessions import Method

ALTERNATIVES = "use roomwatch login --interactive or --import"
_POLL_SECONDS = 0.5
_log = logging.getLogger(__name__)


class LoginTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Upper bounds, in seconds, of every wait during a login.

    Attributes:
        navigation: One page load or form submission.
        interstitial: Cloudflare's "Just a moment..." check.
        interactive: The person's time to log in in the visible browser.
    """

    navigation: float = 30.0
    interstitial: float = 30.0
    interactive: float = 600.0


class Capture(msgspec.Struct, frozen=True, kw_only=True):
    """A captured session, not stored yet.

    Attributes:
        state: The Playwright storage state (cookies and local storage).
        account: The account name, when known (typed, or shown by the site).
        method: How it was captured.
    """

    state: StorageState
    account: str | None
    method: Method


def login_url(site_url: str) -> str:
    """The login page, asking to land on the followed-cams page afterwards."""
    return site_page(site_url, f"{LOGIN_PATH}?next={PROBE_PATH}")


async def _has_session_cookie(context: BrowserContext, site_url: str) -> bool:
    cookies = await context.cookies(site_url)
    return any(c.get("name") == SESSION_COOKIE and c.get("value") for c in cookies)


async def _clear_interstitial(page: Page, timeouts: LoginTimeouts) -> None:
    if not await wait_out_interstitial(page, timeouts.interstitial):
        raise SessionError(
            f'the site\'s "Just a moment..." check did not clear within '
            f"{timeouts.interstitial:.0f} s; try again later or {ALTERNATIVES}"
        )


async def _refuse_challenges(page: Page) -> None:
    if await shows(page, CAPTCHA_SELECTOR):
        raise SessionError(f"the site asks for a captcha: {ALTERNATIVES}")
    if await shows(page, TWO_FACTOR_SELECTOR):
        raise SessionError(f"the site asks for a second factor (2FA): {ALTERNATIVES}")


async def form_login(
    config: Config, username: str, password: str, *, timeouts: LoginTimeouts | None = None
) -> Capture:
    """Logs in headlessly with the site's form (see the module docstring).

    Raises:
        SessionError: Refused password, captcha, second factor, a check that does not clear,
            a missing form, or a timeout; the message says which and what to do instead.
    """
    register_secret(password, always=True)
    limits = timeouts or LoginTimeouts()
    site_url = config.chaturbate.url
    try:
        async with open_browser(config.browser) as browser:
            context = await browser.new_context()
            page = await context.new_page()
            page.set_default_timeout(limits.navigation * 1000)
            await handle_age_gate(page)
            _log.info("form login as %s at %s", username, site_url)
            await page.goto(login_url(site_url), wait_until="domcontentloaded")
            await _clear_interstitial(page, limits)
            await _refuse_challenges(page)
            _log.debug("login form loaded from %s", page.url)
            if not await shows(page, "#id_username") or not await shows(page, LOGIN_FORM_SELECTOR):
                raise SessionError("the login page has no #id_username/#id_password form")
            form = page.locator(f"form:has({LOGIN_FORM_SELECTOR})").first
            await page.locator("#id_username").fill(username)
            await page.locator(LOGIN_FORM_SELECTOR).fill(password)
            remember = form.locator("input[name=rememberme]")
            if await remember.count():
                await remember.first.check()
            submit = form.locator("input[type=submit], button[type=submit], button:not([type])")
            async with page.expect_navigation(wait_until="domcontentloaded"):
                if await submit.count():
                    await submit.first.click()
                else:
                    await page.locator(LOGIN_FORM_SELECTOR).press("Enter")
            await _clear_interstitial(page, limits)
            _log.debug("login form submitted, now at %s", page.url)
            await _refuse_challenges(page)
            if not await _has_session_cookie(context, site_url):
                if await shows(page, LOGIN_FORM_SELECTOR):
                    detail = await page.locator(LOGIN_ERROR_SELECTOR).all_inner_texts()
                    said = f" (the site says: {detail[0].strip()[:160]})" if detail else ""
                    raise SessionError(f"login refused for {username}{said}")
                raise SessionError(
                    f"login did not complete: no {SESSION_COOKIE} cookie after submitting "
                    f"the form (the page is titled {await page.title()!r})"
                )
            outcome = classify_page(final_url=page.url, status=200, html=await page.content())
            if outcome.result is not ProbeResult.VALID:
                await page.goto(site_page(site_url, PROBE_PATH), wait_until="domcontentloaded")
                await _clear_interstitial(page, limits)
                outcome = classify_page(final_url=page.url, status=200, html=await page.content())
            if outcome.result is not ProbeResult.VALID:
                raise SessionError(f"login set a session, but {outcome.reason}")
            state = await context.storage_state()
    except PlaywrightError as exc:
        first = (exc.message or "unknown error").strip().splitlines()[0]
        raise SessionError(f"login failed: {first}") from None
    _log.info("form login as %s succeeded", username)
    return Capture(state=state, account=outcome.account or username, method="form")


def require_display(environ: Mapping[str, str] | None = None) -> None:
    """Fails unless a visible browser can open (Linux needs DISPLAY or WAYLAND_DISPLAY).

    Raises:
        SessionError: No display; the message names the headless alternatives.
    """
    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise SessionError(
            "no display for a visible browser (DISPLAY and WAYLAND_DISPLAY are unset): use "
            "roomwatch login --username U --password-stdin, or export your browser's cookies "
            "and use roomwatch login --import FILE"
        )


async def interactive_login(
    config: Config,
    *,
    timeouts: LoginTimeouts | None = None,
    headless: bool = False,
    environ: Mapping[str, str] | None = None,
    assist: Callable[[Page], Coroutine[Any, Any, None]] | None = None,
) -> Capture:
    """Opens the login page in a visible browser and waits until the person has logged in.

    Args:
        config: The configuration (site URL, browser).
        timeouts: ``interactive`` bounds the whole wait.
        headless: Run without a window (tests; then no display is needed).
        environ: Where to look for a display; default ``os.environ``.
        assist: Runs alongside the wait with the login page, standing in for the person
            (tests drive the page with it).

    Raises:
        SessionError: No display, the window was closed, or no login within the time.
    """
    limits = timeouts or LoginTimeouts()
    if not headless:
        require_display(environ)
    site_url = config.chaturbate.url
    helper: asyncio.Task[None] | None = None
    try:
        async with open_browser(config.browser, headless=headless) as browser:
            context = await browser.new_context(no_viewport=not headless)
            page = await context.new_page()
            await page.goto(login_url(site_url), timeout=limits.navigation * 1000)
            if assist is not None:
                helper = asyncio.create_task(assist(page))
            deadline = time.monotonic() + limits.interactive
            while time.monotonic() < deadline:
                if not browser.is_connected() or not context.pages:
                    raise SessionError("the browser was closed before the login completed")
                if await _has_session_cookie(context, site_url):
                    for candidate in context.pages:
                        if await shows(candidate, LOGGED_IN_SELECTOR):
                            html = await candidate.content()
                            outcome = classify_page(final_url=candidate.url, status=200, html=html)
                            state = await context.storage_state()
                            _log.info("interactive login as %s succeeded", outcome.account)
                            return Capture(
                                state=state, account=outcome.account, method="interactive"
                            )
                await asyncio.sleep(_POLL_SECONDS)
            raise SessionError(f"no login within {limits.interactive:.0f} s; nothing was saved")
    except PlaywrightError as exc:
        first = (exc.message or "unknown error").strip().splitlines()[0]
        raise SessionError(f"interactive login failed: {first}") from None
    finally:
        if helper is not None:
            helper.cancel()
            await asyncio.gather(helper, return_exceptions=True)


def import_cookies(config: Config, path: Path) -> Capture:
    """Reads a cookie file into a capture (account unknown until probed).

    Raises:
        SessionError: See :func:`sessions.imports.parse_cookies`.
    """
    state = read_cookie_file(path, site_url=config.chaturbate.url)
    _log.info("read %d cookies for the site from %s", len(state["cookies"]), path)
    return Capture(state=state, account=None, method="import")
