"""``roomwatch run`` end to end: embedded database, API up, auth, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.support import run_environment
from tests.support import free_port, roomwatch, wait_until_healthy


@pytest.fixture
def agent() -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-agent-"))
    port = free_port()
    env = run_environment(data_dir, port)
    proc = roomwatch("run", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    if not wait_until_healthy(base, proc, 60):
        proc.kill()
        pytest.fail(f"agent did not come up: {proc.communicate()[0]}")
    yield base, data_dir, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_agent_serves_health_and_guards_status(
    agent: tuple[str, Path, subprocess.Popen[str]],
) -> None:
    base, data_dir, proc = agent
    assert httpx.get(f"{base}/health").json() == {"status": "ok", "database": "ok"}
    token_file = data_dir / "api-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()

    denied = httpx.get(f"{base}/status")
    assert denied.status_code == 401
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(f"{base}/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    in_query = httpx.get(f"{base}/status", params={"token": token})
    assert in_query.status_code == 401 and token not in in_query.text

    status = httpx.get(f"{base}/status", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200
    assert status.json()["pending_migrations"] == []
    assert status.json()["counts"]["persons"] == 0
    assert token not in status.text

    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "127.0.0.1" in output and str(token_file) in output
    assert token not in output
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded server left running"


def test_bad_setting_stops_the_agent_with_one_line() -> None:
    env = {**os.environ, "ROOMWATCH_API_PORT": "http"}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "roomwatch: api.port (ROOMWATCH_API_PORT): expected `int`, got `str`"
    )
