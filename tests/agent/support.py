"""Helpers of the agent tests."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import free_port


def run_environment(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of a ``roomwatch run`` on ``data_dir`` (its embedded database: no
    database URL) serving on ``port``. Tests talk to loopback only: the schedules fire at
    start, so every upstream points at a closed local port (those crawls fail fast)."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "ROOMWATCH_DATA_DIR": str(data_dir),
        "ROOMWATCH_API_PORT": str(port),
        "ROOMWATCH_CHATURBATE_URL": closed,
        "ROOMWATCH_AFFILIATE_URL": f"{closed}/api/public/affiliates/onlinerooms/",
        "ROOMWATCH_CBHOURS_URL": f"{closed}/api.php",
    }
    env.pop("ROOMWATCH_DATABASE_URL", None)
    return env
