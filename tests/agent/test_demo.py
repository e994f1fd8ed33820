"""``roomwatch demo``: simulator, demo login, every crawl once, then the API, on its own data."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support import free_port


def test_demo_crawls_everything_and_serves_the_results() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-demo-"))
    port = free_port()
    env = {**os.environ, "ROOMWATCH_DATA_DIR": str(data_dir), "ROOMWATCH_API_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not any("roomwatch API on" in s for s in lines):
            if select.select([proc.stdout], [], [], 1)[0]:
                lines.append(proc.stdout.readline())
            assert proc.poll() is None, "".join(lines)
        output = "".join(lines)
        assert "roomwatch API on" in output, output
        assert (
            f"roomwatch web UI on http://127.0.0.1:{port}/ (sign in with the API token)" in output
        )
        assert output.count(": succeeded (") == 5, output  # every crawl, once
        token = (data_dir / "demo" / "api-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        followed = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/persons",
            params={"following": "true", "limit": 200},
            headers=auth,
        ).json()
        assert len(followed["items"]) > 50
        assert not (data_dir / "api-token").exists()  # the real data dir stays untouched
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
