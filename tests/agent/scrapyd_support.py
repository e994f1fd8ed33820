"""Real Scrapyd servers on loopback for the ``scrapyd`` runner tests, and the project's egg."""

from __future__ import annotations

import shutil
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

ROOT = Path(__file__).parents[2]
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


def build_egg(into: Path) -> Path:
    """The project's egg, built by ``scrapyd-deploy --build-egg`` in a copy of the project
    (it builds where scrapy.cfg is, and leaves build/ and egg-info there)."""
    source = into / "project"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "*.egg-info", "__pycache__", "tests", "bench", "docs", "test-artifacts"
        ),
    )
    egg = into / "roomwatch.egg"
    subprocess.run(
        [str(Path(sys.executable).with_name("scrapyd-deploy")), "--build-egg", str(egg)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return egg


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

    def deploy(self, egg: Path, project: str = "roomwatch") -> None:
        """``addversion.json``, as ``scrapyd-deploy`` uploads the egg it built."""
        with egg.open("rb") as handle:
            answer = self.api(
                "POST",
                "addversion.json",
                data={"project": project, "version": "1"},
                files={"egg": ("project.egg", handle)},
            )
        assert answer["status"] == "ok", answer
        # The node lists the egg's spiders once per version (a process of its own, seconds on a
        # busy machine), when first asked: here, rather than in the first schedule.json.
        listed = self.api("GET", f"listspiders.json?project={project}")
        assert listed["status"] == "ok", listed

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
