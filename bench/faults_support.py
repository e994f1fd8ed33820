"""Helpers of ``bench/faults.py``: the processes it runs, the simulator it steers, its checks.

Everything here is started by the harness and stopped by pid: a ``roomwatch simulate``, a
``roomwatch run`` on a temporary data dir (embedded PostgreSQL), ``roomwatch crawl`` and
``roomwatch login`` commands. A sampler thread remembers every process below the agent and the
CLIs (crawl processes, Playwright, Chromium), so an orphan is found by its ancestry even when
its environment was scrubbed: a remembered process that is still alive with no live supervisor
(the agent, a ``roomwatch crawl``) among its ancestors has no owner.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from storage.embedded import EmbeddedPostgres

ACCOUNT = "faults"
FOLLOWED_ONLINE, FOLLOWED_OFFLINE, FOLLOWERS = 15, 105, 240
ROOMS = 3000
ACTIVE = "SELECT job_id, status, pid, trigger FROM crawl_jobs WHERE status IN ('queued', 'running')"
DUPLICATES = """
SELECT 'follow event', person_id || ' ' || kind || ' at ' || occurred_at, count(*)
  FROM follow_events GROUP BY person_id, kind, occurred_at HAVING count(*) > 1
UNION ALL SELECT 'follow event twice in a row', person_id || ' ' || kind || ' at ' || occurred_at, 2
  FROM (SELECT person_id, kind, occurred_at, lag(kind) OVER (PARTITION BY person_id,
        kind IN ('followed', 'unfollowed') ORDER BY occurred_at, event_id) AS previous
        FROM follow_events) e WHERE kind = previous
UNION ALL SELECT 'completed poll', source || ' job ' || job_id, count(*)
  FROM source_polls WHERE job_id IS NOT NULL GROUP BY source, job_id HAVING count(*) > 1
UNION ALL SELECT 'affiliate snapshot', 'job ' || job_id || ' person ' || person_id, count(*)
  FROM affiliate_api_snapshots WHERE job_id IS NOT NULL GROUP BY job_id, person_id
  HAVING count(*) > 1
UNION ALL SELECT 'cbhours live row', 'job ' || job_id || ' person ' || person_id, count(*)
  FROM cbhours_live_stats WHERE job_id IS NOT NULL GROUP BY job_id, person_id HAVING count(*) > 1
"""
EVENTS = """
SELECT e.job_id, e.kind, e.source, j.status, count(*),
       EXISTS (SELECT 1 FROM source_polls s WHERE s.job_id = e.job_id AND s.source = e.source)
  FROM follow_events e LEFT JOIN crawl_jobs j USING (job_id)
 WHERE e.event_id > %s GROUP BY 1, 2, 3, 4 ORDER BY 1
"""


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int | None, created: float | None = None) -> bool:
    """Whether ``pid`` runs and is not a zombie (and, given ``created``, is still that process)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def role(proc: psutil.Process) -> str | None:
    """What a process is to roomwatch: crawl, cli, agent, browser, postgres; None otherwise."""
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except psutil.Error:
        return None
    if "crawler.crawl" in cmd:
        return "crawl"
    if "agent.cli" in cmd:
        return "agent" if "run" in cmd else "cli"
    if "postgres" in name:
        return "postgres"
    if any(part in name for part in ("chrom", "headless_shell", "node", "playwright")):
        return "browser"
    return None


def is_crawl(pid: int | None) -> bool:
    """Whether ``pid`` is a live crawl process (``crawler.crawl``)."""
    with contextlib.suppress(psutil.Error, ValueError):
        return pid is not None and alive(pid) and role(psutil.Process(pid)) == "crawl"
    return False


class Stack:
    """The simulator, the agent and the data dir of one harness run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.sim_url = f"http://127.0.0.1:{free_port()}"
        self.api = f"http://127.0.0.1:{free_port()}/api/v1"
        self.password = secrets.token_urlsafe(12)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMWATCH_")}
        self.env.update(
            ROOMWATCH_DATA_DIR=str(self.data_dir),
            ROOMWATCH_API_PORT=self.api.split(":")[2].split("/")[0],
            ROOMWATCH_CHATURBATE_URL=self.sim_url,
            ROOMWATCH_AFFILIATE_URL=f"{self.sim_url}/api/public/affiliates/onlinerooms/",
            ROOMWATCH_AFFILIATE_WM="faults",
            ROOMWATCH_CBHOURS_URL=f"{self.sim_url}/api.php",
            ROOMWATCH_IMAGES_ALLOWED_HOSTS="127.0.0.1",
        )
        self.sim: subprocess.Popen[bytes] | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.clis: list[subprocess.Popen[bytes]] = []
        self.token = ""
        self.known: dict[tuple[int, float], str] = {}
        self.seen: Counter[str] = Counter()
        self.last_api: list[Any] = []
        self._sampling = threading.Event()
        self._log = open(workdir / "processes.log", "ab")  # noqa: SIM115 (closed in close())

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def start_sim(self) -> None:
        """``roomwatch simulate`` on loopback, with an account, its lists and a CBHours set."""
        port = self.sim_url.rsplit(":", 1)[1]
        self.sim = self._spawn("simulate", "--port", port, "--rooms", str(ROOMS))
        wait_for(lambda: _answers(f"{self.sim_url}/_sim/faults"), 60, "the simulator")
        self.sim_post("/_sim/site/accounts", username=ACCOUNT, password=self.password)
        self.sim_post(
            "/_sim/site/follows",
            username=ACCOUNT,
            online=FOLLOWED_ONLINE,
            offline=FOLLOWED_OFFLINE,
            followers=FOLLOWERS,
            seed=9,
        )

    def start_agent(self) -> None:
        """``roomwatch run``; waits for ``/health``."""
        self.agent = self._spawn("run")
        wait_for(lambda: _answers(f"{self.api}/health"), 120, "the agent's /health")
        if not self.token:
            self.token = self.run_cli("token").strip().splitlines()[-1]

    def stop_agent(self, grace: float = 40) -> None:
        """SIGTERM to the agent, SIGKILL after ``grace``."""
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(grace)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()

    def crawl_cli(self, spider: str) -> subprocess.Popen[bytes]:
        """``roomwatch crawl SPIDER``, not waited for."""
        proc = self._spawn("crawl", spider)
        self.clis.append(proc)
        return proc

    def run_cli(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """A ``roomwatch`` command to its end; its output (raises on a non-zero exit)."""
        result = subprocess.run(
            [sys.executable, "-m", "agent.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"roomwatch {args[0]}: {result.stderr.strip()[-300:]}")
        return result.stdout

    def trigger(self, spider: str, via: str) -> tuple[int, subprocess.Popen[bytes] | None]:
        """Start the crawl; its job id (and the CLI) once the job is recorded."""
        if via == "api":
            reply = self.call("POST", "/crawls", json={"spider": spider, "args": {}})
            body = reply.json()
            if reply.status_code not in (202, 409):
                raise RuntimeError(f"POST /crawls answered {reply.status_code}: {body}")
            return int(body.get("job_id") or body["existing_job_id"]), None
        (last,) = self.sql("SELECT coalesce(max(job_id), 0) FROM crawl_jobs")[0]
        cli = self.crawl_cli(spider)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = self.sql(
                "SELECT job_id FROM crawl_jobs WHERE spider = %s AND (job_id > %s OR status IN "
                "('queued', 'running')) ORDER BY job_id DESC LIMIT 1",
                (spider, last),
            )
            if rows:
                return int(rows[0][0]), cli
            time.sleep(0.2)
        raise RuntimeError(f"roomwatch crawl {spider} recorded no job within 60 s")

    def job(self, job_id: int) -> tuple[str, int | None]:
        """A job's status and crawl pid."""
        status, pid = self.sql("SELECT status, pid FROM crawl_jobs WHERE job_id = %s", (job_id,))[0]
        return str(status), pid

    def login(self) -> None:
        """A fresh form login of the simulated account (``roomwatch login``)."""
        args = ("login", "--username", ACCOUNT, "--password-stdin")
        self.run_cli(*args, stdin=self.password + "\n")

    def supervisors(self) -> list[int]:
        """Pids of the live agent and ``roomwatch crawl`` commands."""
        procs = [self.agent, *self.clis]
        return [p.pid for p in procs if p is not None and p.poll() is None]

    def postmaster(self) -> int | None:
        """The embedded PostgreSQL's postmaster pid, if it runs."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
            if alive(pid):
                return pid
        return None

    def sample(self) -> None:
        """Remember every roomwatch process below a supervisor, now."""
        for pid in self.supervisors():
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(pid).children(recursive=True):
                    kind = role(child)
                    # pg_ctl hands the postmaster to init on purpose: watched separately.
                    if kind is not None and kind != "postgres":
                        key = (child.pid, child.create_time())
                        if key not in self.known:
                            self.seen[kind] += 1
                        self.known[key] = kind

    def start_sampler(self) -> None:
        """Sample every 0.2 s in a daemon thread until :meth:`close`."""

        def loop() -> None:
            while not self._sampling.wait(0.2):
                self.sample()

        threading.Thread(target=loop, name="process-sampler", daemon=True).start()

    def orphans(self) -> list[tuple[int, str, str]]:
        """Remembered processes still alive with no live supervisor among their ancestors."""
        owners = set(self.supervisors())
        found = []
        for (pid, created), kind in list(self.known.items()):
            if not alive(pid, created):
                del self.known[(pid, created)]
                continue
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if not {p.pid for p in proc.parents()} & owners:
                    parent = proc.ppid()
                    found.append((pid, kind, f"{' '.join(proc.cmdline())[:90]} (parent {parent})"))
        return found

    def pg_outlives_agent(self) -> bool:
        """After a clean stop of the agent: whether the postmaster still runs 30 s later."""
        deadline = time.monotonic() + 30
        while self.postmaster() and time.monotonic() < deadline:
            time.sleep(0.5)
        if (pid := self.postmaster()) is None:
            return False
        kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown; it is ours to clean up
        wait_for(lambda: self.postmaster() is None, 30, "the postmaster's exit")
        return True

    def api_answers(self, seconds: float) -> bool:
        """Whether ``/health`` and ``/status`` both answer 200 within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                codes: list[Any] = [self.call("GET", p).status_code for p in ("/health", "/status")]
            except httpx.HTTPError as exc:
                codes = [type(exc).__name__]
            self.last_api = codes
            if codes == [200, 200]:
                return True
            time.sleep(1)
        return False

    # -- HTTP and SQL -----------------------------------------------------------------------

    def sim_post(self, path: str, **body: Any) -> Any:
        """A simulator control call."""
        reply = httpx.post(f"{self.sim_url}{path}", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def sim_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any simulator control call, its answer checked."""
        reply = httpx.request(method, f"{self.sim_url}{path}", timeout=30, **kwargs)
        reply.raise_for_status()
        return reply

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An API call with the bearer token (not raised on status)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.api}{path}", headers=headers, timeout=10, **kwargs)

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Rows of one query on the agent's database (raises when it does not answer)."""
        conninfo = EmbeddedPostgres(self.data_dir).conninfo
        with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

    def close(self) -> None:
        """Stop the sampler, the CLIs, the agent (gracefully) and the simulator."""
        self._sampling.set()
        for proc in self.clis:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.stop_agent()
        if self.sim is not None and self.sim.poll() is None:
            self.sim.terminate()
            self.sim.wait(20)
        self._log.close()


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


def wait_for(check: Any, seconds: float, what: str) -> None:
    """Poll ``check`` every 0.25 s until true; RuntimeError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.25)


def kill(pid: int | None, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to one process the harness started (directly or below); whether it was sent."""
    if not pid:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
