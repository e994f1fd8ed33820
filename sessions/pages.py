"""The gates in front of the site's pages, passed in a browser: the "Just a moment..." check
and the age-terms overlay; and the site's URLs. What the pages look like (paths, selectors) is
``formats/site.py``.

Waits here are bounded; the caller decides what an unfinished wait means.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urljoin

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page

from formats.site import AGE_GATE_CLOSE_SELECTOR, AGE_GATE_SELECTOR, INTERSTITIAL_TITLE

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
