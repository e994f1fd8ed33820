"""The crawl worker: runs queued jobs (from schedules and the API) with the crawl runner.

One loop thread claims jobs; each claimed job runs in its own thread, which only supervises its
crawl (``Runner.run``: a local crawl process, or a job on a Scrapyd node). Rules:

- jobs are taken oldest first; CLI jobs are left to the ``roomwatch crawl`` that queued them;
- at most ``agent.max_concurrent_crawls`` at once;
- with the local runner, browser crawls one at a time, across every agent on the database too
  (a session advisory lock, :data:`BROWSER_LOCK`, plus a look at running jobs, so a ``roomwatch
  crawl`` of a browser spider counts as well): the agents' rule of one Chromium at a time on
  their machines. With the Scrapyd runner (``Runner.one_browser_at_a_time`` False) the
  browsers run on the nodes, so browser crawls of different accounts run at once; a browser
  job waits only while its account is busy: a browser crawl of this worker, or a running job
  of a browser spider, names it, or some crawl holds its account lock. A job naming no
  account is the newest usable login session's, as the crawl will choose;
- the site's rule, one browser per account, is held by the crawl itself wherever it runs
  (``crawler/account_lock.py``, failing fast ``account_busy``); the worker's look only keeps
  a crawl from being started that would then find its account busy;
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
from dataclasses import dataclass
from typing import Any

import psutil
import psycopg

from agent.runner import GRACE_SECONDS, Runner
from roomwatch.catalog import SPIDERS
from roomwatch.errors import DatabaseError, RoomwatchError
from roomwatch.processes import kill_tree
from storage.browser_lock import account_lock_held
from storage.database import connect, listen, try_lock, unlock
from storage.jobs import (
    Job,
    cancel_for_shutdown,
    finish_job,
    interrupt_abandoned,
    queued_jobs,
    running_accounts,
    running_spiders,
)
from storage.login_sessions import usable_login_session

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
SWEEP_SECONDS = 30.0
BROWSER_LOCK = (0x726F6F6F, 0)  # one browser crawl at a time across agents (local runner)
CHANNEL = "roomwatch_jobs"
BROWSER_SPIDERS = tuple(name for name, info in SPIDERS.items() if info.browser)


@dataclass(frozen=True)
class _Crawl:
    """A job this worker runs: its supervising thread, and whether it drives a browser, for
    which account (None: not a browser crawl, or no usable session to tell)."""

    thread: threading.Thread
    browser: bool
    account: str | None = None


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
        self._running: dict[int, _Crawl] = {}  # by job id
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
        for crawl in running.values():
            crawl.thread.join(max(0.0, deadline - time.monotonic()))
        left = [job_id for job_id, crawl in running.items() if crawl.thread.is_alive()]
        if left:
            with connect(self._conninfo) as conn:
                cancelled = cancel_for_shutdown(conn, left)
            log.info("stopping crawl(s) %s: the agent is shutting down", cancelled)
            for job_id in left:
                running[job_id].thread.join(GRACE_SECONDS + 5)

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
        for job_id, crawl in list(self._running.items()):
            if not crawl.thread.is_alive():
                del self._running[job_id]
        if self._holds_browser_lock and not any(c.browser for c in self._running.values()):
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
            if not info.browser:
                self._start(job)
            elif not self._runner.one_browser_at_a_time:
                account = self._account_of(conn, job)
                if self._account_free(conn, account):
                    self._start(job, browser=True, account=account)
            elif self._take_browser_slot(conn, busy):
                self._start(job, browser=True)

    def _take_browser_slot(self, conn: psycopg.Connection[Any], busy: set[str]) -> bool:
        """One browser crawl at a time across the agents (the local runner)."""
        if self._holds_browser_lock or any(SPIDERS[name].browser for name in busy):
            return False
        self._holds_browser_lock = try_lock(conn, BROWSER_LOCK)
        return self._holds_browser_lock

    @staticmethod
    def _account_of(conn: psycopg.Connection[Any], job: Job) -> str | None:
        """The account a browser job will crawl: its own, else the newest usable login
        session's (the crawl's choice); None when there is none (the crawl fails by itself)."""
        if job.account:
            return job.account
        session = usable_login_session(conn)
        return session.account if session is not None else None

    def _account_free(self, conn: psycopg.Connection[Any], account: str | None) -> bool:
        """No browser crawl of ``account`` runs (the Scrapyd runner's rule, one per account):
        none of this worker's, no running job naming it, nobody holding its lock."""
        if account is None:
            return True
        if any(c.browser and c.account == account for c in self._running.values()):
            return False
        if account in running_accounts(conn, BROWSER_SPIDERS):
            return False
        return not account_lock_held(conn, account)

    def _start(self, job: Job, *, browser: bool = False, account: str | None = None) -> None:
        thread = threading.Thread(
            target=self._run, args=[job.job_id], name=f"crawl-{job.job_id}", daemon=True
        )
        self._running[job.job_id] = _Crawl(thread, browser, account)
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
