"""What the session tests share besides fixtures: the simulated account, and a config for it."""

from __future__ import annotations

from pathlib import Path

from roomwatch.config import Config, load_config

CHROMIUM = "/usr/bin/chromium"
ACCOUNT = "alice"
PASSWORD = "correct-horse-battery-staple"


def make_config(base_url: str, data_dir: Path, **extra: str) -> Config:
    """A config for the simulator at ``base_url`` with its own data dir."""
    return load_config(
        {
            "ROOMWATCH_CHATURBATE_URL": base_url,
            "ROOMWATCH_DATA_DIR": str(data_dir),
            "ROOMWATCH_BROWSER": CHROMIUM,
            **extra,
        }
    )
