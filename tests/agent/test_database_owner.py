"""The agent owns the embedded PostgreSQL: it restarts it when it dies, adopts one a killed
agent left running, stops it on the way out, and ``/health`` says whether it answers.
Real ``roomwatch run`` processes and a real embedded server in a data dir of their own."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.agent.support import run_environment
from tests.support import free_port, roomwatch


def _postmaster(data_dir: Path) -> psutil.Process | None:
    """The live postmaster of the data dir's cluster, if any."""
    try:
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n")[0])
        process = psutil.Process(pid)
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return None
    return process if process.status() != psutil.STATUS_ZOMBIE else None


def _wait(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _health(base: str) -> tuple[int, object]:
    try:
        answer = httpx.get(f"{base}/health", timeout=5)
    except httpx.TransportError:
        return 0, None
    return answer.status_code, answer.json()


class Agents:
    """``roomwatch run`` processes on one data dir; whatever is left is stopped at the end."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-owner-"))
        self.started: list[subprocess.Popen[str]] = []

    def start(self) -> tuple[str, subprocess.Popen[str]]:
        port = free_port()
        env = run_environment(self.data_dir, port)
        proc = roomwatch("run", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started.append(proc)
        base = f"http://127.0.0.1:{port}/api/v1"
        _wait(lambda: _health(base)[0] == 200, 90, "the agent to answer /health")
        return base, proc

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = _postmaster(self.data_dir)
        if left is not None:
            left.send_signal(signal.SIGINT)
            psutil.wait_procs([left], timeout=30)
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture
def agents() -> Iterator[Agents]:
    owner = Agents()
    try:
        yield owner
    finally:
        owner.close()


def test_the_agent_restarts_a_dead_database_and_health_follows(agents: Agents) -> None:
    base, proc = agents.start()
    assert _health(base) == (200, {"status": "ok", "database": "ok"})
    first = _postmaster(agents.data_dir)
    assert first is not None
    first.kill()  # the postmaster dies without a word
    psutil.wait_procs([first], timeout=10)
    _wait(
        lambda: (server := _postmaster(agents.data_dir)) is not None and server.pid != first.pid,
        60,
        "the agent to start the database again",
    )
    _wait(lambda: _health(base)[0] == 200, 30, "/health to say the database answers again")
    assert _health(base) == (200, {"status": "ok", "database": "ok"})
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert _postmaster(agents.data_dir) is None, "the agent left its database running"


def test_health_says_when_the_database_does_not_answer(agents: Agents) -> None:
    base, _ = agents.start()
    server = _postmaster(agents.data_dir)
    assert server is not None
    frozen = [server, *server.children(recursive=True)]
    for process in frozen:  # alive but silent: the keeper sees it running, queries hang
        process.suspend()
    try:
        _wait(lambda: _health(base)[0] == 503, 30, "/health to say the database is unavailable")
        status, body = _health(base)
        assert (status, body) == (503, {"status": "degraded", "database": "unavailable"})
    finally:
        for process in frozen:
            process.resume()
    _wait(lambda: _health(base)[0] == 200, 30, "/health to recover")


def test_a_later_agent_adopts_and_stops_the_database_of_a_killed_agent(agents: Agents) -> None:
    _, first = agents.start()
    first.kill()  # kill -9: no chance to stop its database
    first.wait()
    left = _postmaster(agents.data_dir)
    assert left is not None, "the database went down with the agent"
    _, second = agents.start()
    assert _postmaster(agents.data_dir) == left  # adopted, not restarted
    second.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0
    psutil.wait_procs([left], timeout=30)
    assert not left.is_running(), "the adopting agent left the database running"
