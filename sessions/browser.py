"""Launching Chromium through Playwright, for login capture now and the logged-in crawls later.

Which Chromium: ``browser.executable`` (``ROOMWATCH_BROWSER``, a path or a name on ``PATH``) if
set, and it must exist; else the first system Chromium found (``/usr/bin/chromium``,
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``); else
Playwright's own build, if ``playwright install chromium`` was run. A system browser comes
first because distributions patch it and it needs no download.

The flags (:data:`CHROMIUM_ARGS`) keep the browser quiet and container-friendly: no GPU, no
QUIC, no first-run, background, component-update or sync traffic, and no ``/dev/shm`` (small in
containers). The sandbox stays on, except as root, where Chromium refuses to start with it
(:func:`sandbox_unavailable`; said once per process in the log). The browser gets only the
environment it needs (:func:`browser_environment`): never ``ROOMWATCH_*`` (the API token, the
session key, the database URL) nor anything else it has no use for, since a page it renders
could otherwise read it through a compromised renderer or a crash dump.
Crawls pass :func:`launch_options` to scrapy-playwright's
``PLAYWRIGHT_LAUNCH_OPTIONS``; everything else uses :func:`open_browser`, which always closes
the browser and the Playwright driver, so no Chromium process outlives it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, async_playwright
from playwright.async_api import Error as PlaywrightError

from roomwatch.config import BrowserConfig
from roomwatch.errors import ConfigError, SessionError

CHROMIUM_ARGS: tuple[str, ...] = (
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
NO_SANDBOX = "--no-sandbox"
LAUNCH_TIMEOUT = 30.0
BROWSER_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "DBUS_SESSION_BUS_ADDRESS",
        "CHROME_DEVEL_SANDBOX",
    }
)
"""Variables the browser may inherit as they are; see also :data:`BROWSER_ENV_PREFIXES`."""
BROWSER_ENV_PREFIXES: tuple[str, ...] = ("LC_", "XDG_", "FONTCONFIG")
"""Locale, desktop folders and display, and font configuration: needed to render pages."""
_log = logging.getLogger(__name__)


def browser_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Chromium is started with: what it needs to run and render, nothing else.

    An allow-list rather than a deny-list, so a secret under a name nobody thought of (a cloud
    token, a proxy password) stays out too; ``ROOMWATCH_*`` never passes, whatever the list says.

    Args:
        environ: The environment to take from; default: this process's.
    """
    source = os.environ if environ is None else environ
    return {
        name: value
        for name, value in source.items()
        if not name.startswith("ROOMWATCH_")
        and (name in BROWSER_ENV_NAMES or name.startswith(BROWSER_ENV_PREFIXES))
    }


def sandbox_unavailable(euid: int | None = None) -> bool:
    """Whether Chromium must run with ``--no-sandbox``: only as root, where it refuses to start
    sandboxed. Everywhere else the sandbox stays on.

    Args:
        euid: The effective user id to decide for; default: this process's.
    """
    return (os.geteuid() if euid is None else euid) == 0


@cache
def _say_no_sandbox() -> None:
    # Once per process: every launch would say the same.
    _log.warning("running as root: Chromium starts with --no-sandbox (it refuses otherwise)")


def chromium_args(euid: int | None = None) -> list[str]:
    """:data:`CHROMIUM_ARGS`, plus ``--no-sandbox`` when :func:`sandbox_unavailable`."""
    if not sandbox_unavailable(euid):
        return list(CHROMIUM_ARGS)
    _say_no_sandbox()
    return [NO_SANDBOX, *CHROMIUM_ARGS]


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
    """Keyword arguments for Playwright's ``chromium.launch`` (and scrapy-playwright): the
    flags, the scrubbed environment and the executable."""
    options: dict[str, Any] = {
        "headless": headless,
        "args": chromium_args(),
        "env": browser_environment(),
    }
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
