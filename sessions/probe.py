"""The logged-in probe: does a stored session still open the site's logged-in pages?

It loads ``/followed-cams/`` in a fresh browser context seeded with the session and reads the
outcome the way the site shows it (FORMATS.md §3.1), in this order:

1. the final URL is the login page (a redirect to ``/auth/login/?next=...``): expired;
2. the title is still Cloudflare's "Just a moment..." after waiting: unknown;
3. the logged-in marker (``span.followed_counts`` or ``#user_information``) is there: valid,
   with the "(online/total)" counts and the user name when the page shows them;
4. HTTP 4xx/5xx: unknown (the site refused or failed; that says nothing about the session);
5. the login page came back with HTTP 200 (a login form: a password field, or a form posting
   to the login path): expired;
6. the visitor's page: a "log in" link to the login path, which no logged-in page offers:
   expired;
7. anything else (an empty page, an error page served with 200, a layout not seen before):
   unknown.

Expired is final (the session is marked so and never used again), so it needs a positive sign
of the login side; one odd page is never enough. "Unknown" never marks a session expired: a
crawl may still try it, and the next probe looks again. Images, media and fonts are not
fetched. The probe is used by ``roomwatch sessions verify`` and before each browser crawl.
"""

from __future__ import annotations

import enum
import logging
import re
from urllib.parse import urlsplit

import msgspec
from parsel import Selector
from playwright.async_api import Browser, Route, StorageState
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from formats.site import (
    INTERSTITIAL_TITLE,
    LOGGED_IN_SELECTOR,
    LOGIN_PATH,
    PROBE_PATH,
    USERNAME_SELECTOR,
)
from roomwatch.config import Config
from sessions.browser import open_browser
from sessions.pages import site_page, wait_out_interstitial

DEFAULT_TIMEOUT = 30.0
_COUNTS = re.compile(r"\(\s*([0-9]{1,9})\s*/\s*([0-9]{1,9})\s*\)", re.ASCII)
_LOGIN_FIELD_SELECTOR = "input[type=password], #id_password"
_SKIPPED_RESOURCES = frozenset({"image", "media", "font"})
_log = logging.getLogger(__name__)


class ProbeResult(enum.StrEnum):
    """What the probe concluded; the values match ``login_sessions.status``."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class ProbeOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The probe's conclusion and why.

    Attributes:
        result: valid, expired or unknown.
        reason: One line for the user ("redirected to the login page").
        account: The user name the page shows, when it shows one.
        followed_online: The header's online followed count, when shown.
        followed_total: The header's total followed count, when shown.
    """

    result: ProbeResult
    reason: str
    account: str | None = None
    followed_online: int | None = None
    followed_total: int | None = None


def classify_page(*, final_url: str, status: int, html: str) -> ProbeOutcome:
    """Decides valid, expired or unknown from a loaded page (rules in the module docstring).

    Args:
        final_url: The URL after redirects.
        status: The HTTP status of the final response.
        html: The page's HTML.
    """
    if urlsplit(final_url).path.startswith(LOGIN_PATH):
        return ProbeOutcome(result=ProbeResult.EXPIRED, reason="redirected to the login page")
    page = Selector(text=html or "<html></html>")
    title = " ".join(page.css("title::text").getall()).strip()
    if INTERSTITIAL_TITLE in title:
        return ProbeOutcome(
            result=ProbeResult.UNKNOWN, reason='the site\'s "Just a moment..." check did not clear'
        )
    if page.css(LOGGED_IN_SELECTOR):
        counts = _COUNTS.search(" ".join(page.css("span.followed_counts ::text").getall()))
        account = (page.css(USERNAME_SELECTOR).xpath("string()").get() or "").strip() or None
        return ProbeOutcome(
            result=ProbeResult.VALID,
            reason="logged in",
            account=account,
            followed_online=int(counts.group(1)) if counts else None,
            followed_total=int(counts.group(2)) if counts else None,
        )
    if status >= 400:
        return ProbeOutcome(result=ProbeResult.UNKNOWN, reason=f"the site answered HTTP {status}")
    if page.css(_LOGIN_FIELD_SELECTOR) or any(
        _to_login(action) for action in page.css("form::attr(action)").getall()
    ):
        return ProbeOutcome(
            result=ProbeResult.EXPIRED, reason=f"the site served its login page (HTTP {status})"
        )
    if any(_to_login(href) for href in page.css("a::attr(href)").getall()):
        return ProbeOutcome(
            result=ProbeResult.EXPIRED,
            reason="the page shows no logged-in marker but a log-in link (anonymous page)",
        )
    return ProbeOutcome(
        result=ProbeResult.UNKNOWN,
        reason=f"the page shows neither a logged-in marker nor a login form (HTTP {status})",
    )


def _to_login(url: str) -> bool:
    """Whether a link or form action leads to the login page."""
    return urlsplit(url.strip()).path.startswith(LOGIN_PATH)


async def _skip_heavy(route: Route) -> None:
    if route.request.resource_type in _SKIPPED_RESOURCES:
        await route.abort()
    else:
        await route.continue_()


async def probe_state(
    browser: Browser,
    state: StorageState,
    site_url: str,
    *,
    path: str = PROBE_PATH,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProbeOutcome:
    """Opens ``path`` with ``state`` in a new context of ``browser`` and classifies the page.

    Network failures and timeouts give ``unknown`` with the reason; they do not raise.

    Args:
        browser: A running browser (:func:`sessions.browser.open_browser`).
        state: The session's storage state.
        site_url: The configured site root.
        path: A logged-in page.
        timeout: Seconds for each page load and for the "Just a moment..." check.
    """
    url = site_page(site_url, path)
    outcome = await _probe(browser, state, url, timeout)
    _log.info("probe of %s: %s (%s)", url, outcome.result.value, outcome.reason)
    return outcome


async def _probe(browser: Browser, state: StorageState, url: str, timeout: float) -> ProbeOutcome:
    context = await browser.new_context(storage_state=state)
    try:
        await context.route("**/*", _skip_heavy)
        page = await context.new_page()
        response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        if INTERSTITIAL_TITLE in await page.title():
            if not await wait_out_interstitial(page, timeout):
                return classify_page(final_url=page.url, status=403, html=await page.content())
            # Cleared: load the page once more, so the status is the page's own.
            response = await page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        status = response.status if response is not None else 200
        return classify_page(final_url=page.url, status=status, html=await page.content())
    except PlaywrightTimeoutError:
        return ProbeOutcome(
            result=ProbeResult.UNKNOWN, reason=f"the site did not answer within {timeout:.0f} s"
        )
    except PlaywrightError as exc:
        first = (exc.message or "unknown error").strip().splitlines()[0]
        return ProbeOutcome(result=ProbeResult.UNKNOWN, reason=f"cannot load {url} ({first})")
    finally:
        await context.close()


async def verify_state(
    config: Config, state: StorageState, *, timeout: float = DEFAULT_TIMEOUT
) -> ProbeOutcome:
    """Starts a headless browser just for one probe of ``state`` (see :func:`probe_state`)."""
    async with open_browser(config.browser) as browser:
        return await probe_state(browser, state, config.chaturbate.url, timeout=timeout)
