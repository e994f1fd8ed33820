"""``roomwatch demo``: simulator, demo login, every crawl once, then the API, on its own data."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.support import free_port, roomwatch


def test_demo_crawls_everything_and_serves_the_results() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-demo-"))
    port = free_port()
    env = {
        **os.environ,
        "ROOMWATCH_DATA_DIR": str(data_dir),
        "ROOMWATCH_API_PORT": str(port),
        # Paced at 1 s, the activity backfill alone took a third of the run; the demo's simulated
        # CBHours admits what the configured pace asks for (still enforced: too fast is a 429).
        "ROOMWATCH_CBHOURS_MIN_INTERVAL_SECONDS": "0.05",
        # The stream's first run ends at its first quiet answer, held this long by the server.
        "ROOMWATCH_EVENTS_TIMEOUT_SECONDS": "1",
        # The agent's schedules start every crawl again at once; at SIGTERM they are cancelled
        # instead of awaited (up to 20 s): the exit must be clean either way.
        "ROOMWATCH_AGENT_SHUTDOWN_GRACE_SECONDS": "0",
    }
    proc = roomwatch("demo", env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    # A thread reads the lines: select() on the pipe says nothing of lines already read into
    # the text buffer (two lines printed together left the second unseen until the deadline).
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not any("API token:" in s for s in lines):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        output = "".join(lines)
        assert "roomwatch API on" in output, output
        assert (
            f"roomwatch web UI on http://127.0.0.1:{port}/ (sign in with the API token)" in output
        )
        assert output.count(": succeeded (") == 7, output  # every crawl, once
        login = httpx.get(f"http://127.0.0.1:{port}/users", follow_redirects=True)
        assert login.status_code == 200
        assert 'id="login-form"' in login.text  # the first look is a page, behind sign-in
        token = (data_dir / "demo" / "api-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        followed = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/persons",
            params={"following": "true", "limit": 200},
            headers=auth,
        ).json()
        assert len(followed["items"]) > 50
        # The owner's room: the stream read, the Stats API answered.
        events = httpx.get(f"http://127.0.0.1:{port}/api/v1/room/events", headers=auth).json()
        assert len(events["items"]) > 10
        stats = httpx.get(f"http://127.0.0.1:{port}/api/v1/room/stats", headers=auth).json()
        assert stats["points"] and stats["points"][-1]["num_followers"] > 0
        assert not (data_dir / "api-token").exists()  # the real data dir stays untouched
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
