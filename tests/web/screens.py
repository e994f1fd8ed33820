"""Screenshots of the web UI tests: full-page PNGs under ``test-artifacts/ui/`` (gitignored)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


def screenshot(page: Page, name: str) -> Path:
    """Saves the whole page as ``test-artifacts/ui/NAME.png`` (replacing an older one)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
