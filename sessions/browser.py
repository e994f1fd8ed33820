"""Launching Chromium through Playwright, for login capture now and the logged-in crawls later.

Which Chromium: ``browser.executable`` (``ROOMWATCH_BROWSER``, a path or a name on ``PATH``) if
set, and it must exist; else the first system Chromium found (``/usr/bin/chromium``,
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``); else
Playwright's own build, if ``playwright install chromium`` was run. A system browser comes
first because distributions patch it and it needs no download.

The flags (:data:`CHROMIUM_ARGS`) keep the browser quiet and container-friendly: no sandbox
(Chromium refuses to start as root with it, and containers rarely allow its namespaces), no
GPU, no QUIC, no first-run, background, component-update or sync traffic, and no ``/dev/shm``
(small in containers). Crawls pass :func:`launch_options` to scrapy-playwright's
``PLAYWRIGHT_LAUNCH_OPTIONS``; everything else uses :func:`open_browser`, which always closes
the browser and the Playwright driver, so no Chromium process outlives it.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright
from playwright.async_api import Error as PlaywrightError

from roomwatch.config import BrowserConfig
from roomwatch.errors import ConfigError, SessionError

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
SYSTEM_CHROMIUMS: tuple[str, ...] = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
LAUNCH_TIMEOUT = 30.0


def find_chromium(configured: str = "") -> str | None:
    """The Chromium executable to launch; None means Playwright's own build.

    Args:
        configured: ``browser.executable``: a path or a command name; empty auto-detects.

    Raises:
        ConfigError: ``configured`` is set but names nothing executable.
    """
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise ConfigError(
                f"browser.executable (ROOMWATCH_BROWSER): {configured} is not an executable file"
            )
        return str(Path(found).resolve()) if "/" in configured else found
    for candidate in SYSTEM_CHROMIUMS:
        found = shutil.which(candidate)
        if found is not None:
            return found
    return None


def launch_options(settings: BrowserConfig, *, headless: bool = True) -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch`` (and scrapy-playwright)."""
    options: dict[str, Any] = {"headless": headless, "args": list(CHROMIUM_ARGS)}
    executable = find_chromium(settings.executable)
    if executable is not None:
        options["executable_path"] = executable
    return options


@asynccontextmanager
async def open_browser(
    settings: BrowserConfig, *, headless: bool = True, timeout: float = LAUNCH_TIMEOUT
) -> AsyncIterator[Browser]:
    """A running Chromium for the ``async with`` block; closed (with its driver) afterwards.

    Args:
        settings: The ``[browser]`` settings.
        headless: False shows a window (needs a display).
        timeout: Seconds to wait for the browser to start.

    Raises:
        ConfigError: The configured executable does not exist.
        SessionError: Chromium did not start (the message has the first line of the reason).
    """
    options = launch_options(settings, headless=headless)
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(**options, timeout=timeout * 1000)
        except PlaywrightError as exc:
            first = (exc.message or "unknown error").strip().splitlines()[0]
            hint = "" if "executable_path" in options else "; set ROOMWATCH_BROWSER"
            raise SessionError(f"cannot start Chromium ({first}){hint}") from None
        try:
            yield browser
        finally:
            await browser.close()
