"""Real Scrapyd servers on loopback for the ``scrapyd`` runner tests (the project's egg is
built and deployed by the product: ``roomwatch deploy``, agent/deploy.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import psutil

from roomwatch.processes import kill_tree
from tests.support import free_port

USER = "roomwatch"
PASSWORD = "n0de-pa55word-never-logged"
CONF = """\
[scrapyd]
bind_address = 127.0.0.1
http_port = {port}
username = {user}
password = {password}
jobstorage = scrapyd.jobstorage.SqliteJobStorage
eggs_dir = {home}/eggs
logs_dir = {home}/logs
dbs_dir = {home}/dbs
max_proc = 2
poll_interval = 0.2
"""


class ScrapydServer:
    """One ``scrapyd`` process in a directory of its own (its scrapyd.conf, eggs, logs, SQLite
    job storage), with basic auth, on a free loopback port; what it prints goes to
    ``output``. Crawls it starts inherit ``env``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="roomwatch-scrapyd-"))
        self.port = free_port()
        self.env = env
        self.output = self.home / "scrapyd.out"
        (self.home / "scrapyd.conf").write_text(
            CONF.format(port=self.port, user=USER, password=PASSWORD, home=self.home)
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The node's URL as ``scrapyd.urls`` takes it, credentials in it."""
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scrapyd"],
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.api("GET", "daemonstatus.json").get("status") == "ok":
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"scrapyd did not start: {self.output.read_text()[-2000:]}")
            time.sleep(0.2)

    def api(self, method: str, endpoint: str, **kwargs: object) -> dict[str, object]:
        response = httpx.request(
            method,
            f"http://127.0.0.1:{self.port}/{endpoint}",
            auth=(USER, PASSWORD),
            timeout=120,
            **kwargs,  # type: ignore[arg-type]
        )
        answer: dict[str, object] = response.json()
        return answer

    def crawl_processes(self) -> list[psutil.Process]:
        """The crawls it runs now (its children)."""
        if self.process is None or self.process.poll() is not None:
            return []
        return psutil.Process(self.process.pid).children()

    def kill(self) -> None:
        """Kills it and everything it started, as a machine that dies would."""
        if self.process is not None:
            kill_tree(self.process.pid)
            self.process.wait()
            self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()
