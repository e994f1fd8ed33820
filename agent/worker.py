"""The crawl worker: runs queued jobs (from schedules and the API) with the crawl runner.

One loop thread claims jobs; each claimed job runs in its own thread, which only supervises its
crawl (``Runner.run``: a local crawl process, or a job on a Scrapyd node). Rules:

- jobs are taken oldest first; CLI jobs are left to the ``roomwatch crawl`` that queued them;
- at most ``agent.max_concurrent_crawls`` at once; browser crawls one at a time, across every
  agent on the database too (a session advisory lock, plus a look at running jobs, so a
  ``roomwatch crawl`` of a browser spider counts as well). This is the agents' scheduling
  rule (one Chromium at a time); the site's rule, one browser per account, is held by the
  crawl itself wherever it runs (``crawler/account_lock.py``), and this one only keeps a
  crawl from being started that would then find its account busy;
- several agents may race for a job: the runner's supervisor lock lets exactly one run it;
- the loop sleeps on ``LISTEN roomwatch_jobs`` (a trigger notifies every insert) with a short
  timeout, so a new job starts within milliseconds and a lost notification costs a second;
- every :data:`SWEEP_SECONDS` it interrupts jobs whose supervisor died (``interrupt_abandoned``)
  and kills their orphaned crawl processes, so nothing stays ``running`` for ever;
- on :meth:`Worker.stop`, running crawls get ``agent.shutdown_grace_seconds`` to end; then they
  are recorded ``cancelled`` and their runners stop the process trees.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import psycopg

from agent.runner import GRACE_SECONDS, Runner
from roomwatch.catalog import SPIDERS
from roomwatch.errors import DatabaseError, RoomwatchError
from roomwatch.processes import kill_tree
from storage.database import connect, listen, try_lock, unlock
from storage.jobs import (
    Job,
    cancel_for_shutdown,
    finish_job,
    interrupt_abandoned,
    queued_jobs,
    running_spiders,
)

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
SWEEP_SECONDS = 30.0
BROWSER_LOCK = (0x726F6F6F, 0)  # one browser crawl at a time across agents
CHANNEL = "roomwatch_jobs"


def sweep_abandoned(conninfo: str) -> list[Job]:
    """Interrupts jobs whose supervisor is gone and kills their orphaned crawl processes."""
    with connect(conninfo) as conn:
        jobs = interrupt_abandoned(conn)
    for job in jobs:
        log.warning("job %d: %s interrupted (its supervisor stopped)", job.job_id, job.spider)
        if job.pid is not None:
            kill_orphan(job.pid, job.job_id)
    return jobs


def kill_orphan(pid: int, job_id: int) -> None:
    """Kills a crawl left behind by a dead agent, and its whole process tree, if it is that crawl.

    The command line must be that job's crawl process: a pid alone may have been reused. The
    tree, not the process group: Playwright starts Chromium in a group of its own.
    """
    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    if "crawler.crawl" in cmdline and str(job_id) in cmdline:
        log.warning("job %d: killing its orphaned crawl process %d", job_id, pid)
        kill_tree(pid)


class Worker:
    """Claims queued jobs and runs them in threads; see the module docstring for the rules.

    Args:
        runner: the crawl runner of this agent (its backend: local or scrapyd).
        conninfo: the database.
        max_concurrent: crawls at once.
        shutdown_grace: seconds running crawls get on :meth:`stop` before they are cancelled.
        on_finished: called with each final job (the alert notifier listens).
    """

    def __init__(
        self,
        runner: Runner,
        conninfo: str,
        max_concurrent: int = 4,
        shutdown_grace: float = 20.0,
        on_finished: Callable[[Job], None] | None = None,
    ) -> None:
        self._runner = runner
        self._conninfo = conninfo
        self._max = max_concurrent
        self._grace = shutdown_grace
        self._on_finished = on_finished
        self._running: dict[int, tuple[threading.Thread, bool]] = {}  # job id -> (thread, browser)
        self._holds_browser_lock = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the claiming loop."""
        self._thread = threading.Thread(target=self._loop, name="crawl-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops claiming; lets running crawls end within the grace, then cancels them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        running = dict(self._running)
        if not running:
            return
        log.info("waiting up to %s s for %d running crawl(s)", self._grace, len(running))
        deadline = time.monotonic() + self._grace
        for thread, _ in running.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [job_id for job_id, (thread, _) in running.items() if thread.is_alive()]
        if left:
            with connect(self._conninfo) as conn:
                cancelled = cancel_for_shutdown(conn, left)
            log.info("stopping crawl(s) %s: the agent is shutting down", cancelled)
            for job_id in left:
                running[job_id][0].join(GRACE_SECONDS + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._conninfo, autocommit=True) as conn:
                    listen(conn, CHANNEL)
                    self._serve(conn)
            except (psycopg.Error, DatabaseError) as exc:
                log.warning("crawl worker: database trouble (%s); retrying", exc)
                self._holds_browser_lock = False  # it went with the connection
                self._stop.wait(5)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        last_sweep = time.monotonic()  # the agent swept at start
        while not self._stop.is_set():
            self._reap(conn)
            if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                sweep_abandoned(self._conninfo)
                last_sweep = time.monotonic()
            self._claim(conn)
            for _ in conn.notifies(timeout=POLL_SECONDS, stop_after=1):
                pass

    def _reap(self, conn: psycopg.Connection[Any]) -> None:
        for job_id, (thread, _) in list(self._running.items()):
            if not thread.is_alive():
                del self._running[job_id]
        if self._holds_browser_lock and not any(b for _, b in self._running.values()):
            unlock(conn, BROWSER_LOCK)
            self._holds_browser_lock = False

    def _claim(self, conn: psycopg.Connection[Any]) -> None:
        if len(self._running) >= self._max:
            return
        candidates = [job for job in queued_jobs(conn) if job.job_id not in self._running]
        if not candidates:
            return
        busy = running_spiders(conn)
        for job in candidates:
            if len(self._running) >= self._max:
                return
            info = SPIDERS.get(job.spider)
            if info is None:
                finish_job(
                    conn,
                    job.job_id,
                    "failed",
                    finish_reason="not started",
                    error_message=f"unknown spider {job.spider!r}",
                )
                continue
            if info.browser and not self._take_browser_slot(conn, busy):
                continue
            self._start(job, info.browser)

    def _take_browser_slot(self, conn: psycopg.Connection[Any], busy: set[str]) -> bool:
        if self._holds_browser_lock or any(SPIDERS[name].browser for name in busy):
            return False
        self._holds_browser_lock = try_lock(conn, BROWSER_LOCK)
        return self._holds_browser_lock

    def _start(self, job: Job, browser: bool) -> None:
        thread = threading.Thread(
            target=self._run, args=[job.job_id], name=f"crawl-{job.job_id}", daemon=True
        )
        self._running[job.job_id] = (thread, browser)
        thread.start()

    def _run(self, job_id: int) -> None:
        try:
            job = self._runner.run(job_id)
        except (RoomwatchError, psycopg.Error, OSError) as exc:
            # The job stays running with no supervisor lock: the next sweep interrupts it.
            log.error("job %d: the runner failed: %s", job_id, exc)
            return
        if job.status in ("queued", "running"):
            return  # another agent's worker took it
        log.info(
            "job %d: %s %s%s",
            job.job_id,
            job.spider,
            job.status,
            f" ({job.error_message})" if job.error_message else "",
        )
        if self._on_finished is not None:
            self._on_finished(job)
