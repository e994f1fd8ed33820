"""What roomwatch knows about the site's pages: paths, markers, and the gates in front of them.

The selectors come from FORMATS.md §3.1-3.5 (clients of the real site and saved logged-in DOM):

* logged in: the header's ``span.followed_counts`` "(online/total)", or the user menu
  ``#user_information`` (older site);
* the login page: ``<h1>Chaturbate Login</h1>``, a title containing "Login", ``#id_password``;
* Cloudflare's check: the title "Just a moment..."; a real browser passes it by waiting;
* the age-terms overlay ``#entrance_terms_overlay``, closed by ``#close_entrance_terms``;
* challenges only a person can answer: a captcha widget, or a second-factor code field.

Waits here are bounded; the caller decides what an unfinished wait means.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

LOGIN_PATH = "/auth/login/"
PROBE_PATH = "/followed-cams/"
FOLLOWERS_PATH = "/accounts/followers/"
LOGGED_IN_SELECTOR = "span.followed_counts, #user_information"
USERNAME_SELECTOR = "#user_information a.username, [data-testid=user-menu-username]"
LOGIN_FORM_SELECTOR = "#id_password"
LOGIN_ERROR_SELECTOR = ".errorlist li"
CAPTCHA_SELECTOR = (
    ".g-recaptcha, iframe[src*=recaptcha], .h-captcha, iframe[src*=hcaptcha], #captcha, "
    ".cf-turnstile, iframe[src*='challenges.cloudflare.com']"
)
TWO_FACTOR_SELECTOR = (
    "#id_otp_token, input[name=otp_token], input[autocomplete=one-time-code], "
    "form[action*=two-factor], form[action*=two_factor]"
)
AGE_GATE_SELECTOR = "#entrance_terms_overlay"
AGE_GATE_CLOSE_SELECTOR = "#close_entrance_terms"
INTERSTITIAL_TITLE = "Just a moment"
_POLL_SECONDS = 0.2


def site_page(site_url: str, path: str) -> str:
    """The absolute URL of ``path`` on the configured site."""
    return urljoin(site_url.rstrip("/") + "/", path.lstrip("/"))


async def wait_out_interstitial(page: Page, timeout: float) -> bool:
    """Waits until the page is no longer a "Just a moment..." check; False if it still is.

    The check navigates by itself once passed (a real one solves a JS challenge first), so
    this polls the title and ``readyState`` of whatever document is current, tolerating the
    moments in between documents; it returns once the next document is parsed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            title, ready = await page.evaluate("() => [document.title, document.readyState]")
        except PlaywrightError:
            title, ready = "", "loading"  # a navigation replaced the document meanwhile
        if title and INTERSTITIAL_TITLE not in title and ready != "loading":
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)


async def handle_age_gate(page: Page) -> None:
    """Closes the age-terms overlay whenever it blocks an action on ``page``.

    The site then remembers ``agreeterms=1``. A handler rather than a one-time check, because
    the overlay is drawn by a script that may run after the page looks ready, and it would then
    swallow the next click.
    """

    async def close(overlay: Locator) -> None:
        await page.locator(AGE_GATE_CLOSE_SELECTOR).first.click()

    await page.add_locator_handler(page.locator(AGE_GATE_SELECTOR).first, close)


async def shows(page: Page, selector: str) -> bool:
    """Whether any element matches ``selector`` on the page now."""
    try:
        return await page.locator(selector).count() > 0
    except PlaywrightError:
        return False
