"""What the browser is started with: a scrubbed environment, and the sandbox unless root."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import psutil
import pytest

from crawler.settings import crawl_settings
from roomwatch.catalog import SPIDERS
from roomwatch.config import load_config
from sessions import browser
from sessions.browser import (
    CHROMIUM_ARGS,
    NO_SANDBOX,
    browser_environment,
    chromium_args,
    open_browser,
    sandbox_unavailable,
)
from tests.sessions.support import make_config

SECRET = "sEcReT-api-token-0123456789abcdef0123456789"


def _chromium_environments() -> list[dict[str, str]]:
    """The environments of the Chromium browser processes below this one.

    Only the browser process itself is read (the one whose parent is Playwright's driver): its
    helpers (zygote, renderers) inherit its environment, and Chromium writes their process
    titles over the memory that ``/proc/<pid>/environ`` shows, so theirs cannot be read back.
    """
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" not in child.name() or "chrom" in psutil.Process(child.ppid()).name():
                continue
            raw = Path(f"/proc/{child.pid}/environ").read_bytes()
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            continue
        pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
        found.append({k.decode(): v.decode(errors="replace") for k, _, v in pairs})
    return found


def test_the_launched_chromium_inherits_no_roomwatch_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config("http://127.0.0.1:1", tmp_path)
    monkeypatch.setenv("ROOMWATCH_API_TOKEN", SECRET)
    monkeypatch.setenv("ROOMWATCH_SECRET_KEY", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("LANG", "C.UTF-8")

    async def launch() -> list[dict[str, str]]:
        async with open_browser(config.browser) as browser:
            page = await browser.new_page()  # a renderer too, not only the browser process
            await page.set_content("<p>hello</p>")
            return _chromium_environments()

    environments = asyncio.run(launch())
    assert environments, "no Chromium process found below this one"
    for environment in environments:
        assert not [name for name in environment if name.startswith("ROOMWATCH_")]
        assert SECRET not in environment.values()
        assert environment.get("PATH") == os.environ["PATH"]
        assert environment.get("LANG") == "C.UTF-8"


def test_browser_environment_is_an_allow_list() -> None:
    given = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "de_DE.UTF-8",
        "LC_TIME": "C",
        "TZ": "UTC",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DISPLAY": ":0",
        "WAYLAND_DISPLAY": "wayland-0",
        "FONTCONFIG_PATH": "/etc/fonts",
        "ROOMWATCH_API_TOKEN": SECRET,
        "ROOMWATCH_DATABASE_URL": "postgresql://u:pw@h/db",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "PGPASSWORD": SECRET,
        "http_proxy": "http://u:pw@proxy:3128",
    }
    kept = browser_environment(given)
    assert set(kept) == {
        "PATH",
        "HOME",
        "LANG",
        "LC_TIME",
        "TZ",
        "XDG_RUNTIME_DIR",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "FONTCONFIG_PATH",
    }


def test_no_sandbox_only_as_root(caplog: pytest.LogCaptureFixture) -> None:
    assert sandbox_unavailable(0) is True
    assert sandbox_unavailable(1000) is False
    assert chromium_args(1000) == list(CHROMIUM_ARGS)
    assert NO_SANDBOX not in CHROMIUM_ARGS
    browser._say_no_sandbox.cache_clear()  # as in a new process
    with caplog.at_level(logging.INFO, logger="sessions.browser"):
        assert chromium_args(0) == [NO_SANDBOX, *CHROMIUM_ARGS]
        chromium_args(0)
        chromium_args(1000)
    said = [r for r in caplog.records if NO_SANDBOX in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert (NO_SANDBOX in chromium_args()) is (os.geteuid() == 0)


def test_the_crawls_browser_gets_the_same_launch_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path)})
    monkeypatch.setenv("ROOMWATCH_API_TOKEN", SECRET)
    spider = next(s for s in SPIDERS.values() if s.browser)
    options = crawl_settings(config, spider, 1, "")["PLAYWRIGHT_LAUNCH_OPTIONS"]
    assert not [name for name in options["env"] if name.startswith("ROOMWATCH_")]
    assert options["env"]["PATH"] == os.environ["PATH"]
    assert (NO_SANDBOX in options["args"]) is (os.geteuid() == 0)
