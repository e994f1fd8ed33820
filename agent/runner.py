"""The crawl runner: each job runs in its own process, watched for exit, cancel and timeout.

Rules: the job row is the truth (``storage.jobs``); a crawl process gets SIGTERM to stop
gracefully and, after a grace period, SIGKILL for itself and every descendant, found by process
tree (Playwright puts Chromium in a process group of its own, out of ``killpg``'s reach); a
process that dies without recording its end leaves its job ``failed`` with the exit code, and
whatever it started is killed too. The crawl dies with its supervisor (``crawler/crawl.py``),
gets its config on stdin and only the environment variables it needs (no API token, no
database URL). A database restart costs the supervisor its connection, and with it the job
lock: it reconnects and takes the lock again, so the job carries on.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec
import psutil
import psycopg

from roomwatch.catalog import SPIDERS, with_account
from roomwatch.config import Config
from roomwatch.errors import DatabaseError, JobError
from roomwatch.processes import descendants, kill_all
from storage.database import connect
from storage.jobs import (
    Job,
    Trigger,
    create_job,
    enforce_end,
    finish_job,
    get_job,
    lock_job,
    record_pid,
    start_job,
)
from storage.settings import register_stream_accounts

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
GRACE_SECONDS = 10.0
RECONNECT_SECONDS = 60.0  # within the crawl's own LOCK_GRACE_SECONDS (crawler/crawl.py)

# What a crawl process inherits: what Python, Playwright and Chromium need to run, and nothing
# that carries a secret (ROOMWATCH_* settings reach the crawl on its stdin instead).
PASSED_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "VIRTUAL_ENV",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "XDG_RUNTIME_DIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
# TEST_: the markers the test suite puts in the environment to find every process a crawl
# started, however re-parented (tests/processes.py); they carry no secret.
PASSED_PREFIXES = ("LC_", "PYTHON", "PLAYWRIGHT_", "COVERAGE_", "TEST_")


def crawl_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a crawl process gets (see :data:`PASSED_VARIABLES`)."""
    return {
        name: value
        for name, value in environ.items()
        if name in PASSED_VARIABLES or name.startswith(PASSED_PREFIXES)
    }


def crawl_input(config: Config, conninfo: str) -> bytes:
    """The crawl's stdin: its config, less what a crawl never needs (the API token, alerts)."""
    lean = msgspec.structs.replace(
        config,
        api=msgspec.structs.replace(config.api, token=""),
        alerts=type(config.alerts)(),
    )
    return msgspec.json.encode({"config": lean, "conninfo": conninfo})


class Runner:
    """A runner backend (``runner`` in the config): queues jobs and runs them to their end.

    ``local`` is :class:`CrawlRunner` (a crawl process per job on this machine), ``scrapyd``
    is ``agent.scrapyd_runner.ScrapydRunner`` (a job on one of the Scrapyd nodes); the worker
    and ``roomwatch crawl`` use whichever ``agent.runtime.make_runner`` makes. Either way the
    supervisor holds the job lock while the crawl runs and keeps the row truthful.
    """

    one_browser_at_a_time: ClassVar[bool] = True
    """Whether the worker runs browser crawls one at a time across every agent
    (``agent.worker.BROWSER_LOCK``): the local runner's Chromiums share the agents' machines.
    False where the browsers run elsewhere (Scrapyd nodes): then browser crawls of different
    accounts run at once, one per account."""

    def __init__(self, config: Config, conninfo: str) -> None:
        self.config = config
        self.conninfo = conninfo

    def submit(self, spider: str, args: dict[str, Any], trigger: Trigger) -> Job:
        """Queues a job.

        Raises:
            JobError: unknown spider, or (``JobConflict``) one is already queued or running.
        """
        if spider not in SPIDERS:
            raise JobError(f"unknown spider {spider!r}; known: {', '.join(SPIDERS)}")
        with connect(self.conninfo) as conn:
            register_stream_accounts(conn, self.config)
            return create_job(conn, spider, with_account(spider, args, self.config), trigger)

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        """Runs a queued job to its end; returns the final job row (as it is, if another
        supervisor took the job or it was cancelled before it started)."""
        raise NotImplementedError


class CrawlRunner(Runner):
    """The ``local`` backend: starts and supervises crawl processes for one agent (or one
    ``roomwatch crawl``) on this machine."""

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        """Runs a queued job to its end in a child process; returns the final job row."""
        log_path = self.config.job_log(job_id)
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = connect(self.conninfo, autocommit=True)
        try:
            # The supervisor lock first: it marks this job as watched for as long as this
            # connection lives. Not getting it, or the job no longer being queued, means
            # another worker took it or it was cancelled meanwhile.
            if not lock_job(conn, job_id) or not start_job(
                conn, job_id, os.getpid(), str(log_path)
            ):
                job = get_job(conn, job_id)
                assert job is not None
                return job
            process = self._spawn(job_id)
            record_pid(conn, job_id, process.pid)
            supervision = Supervision(self.conninfo, conn, job_id, process)
            try:
                return supervision.run(on_progress)
            finally:
                conn = supervision.conn
        finally:
            conn.close()

    def _spawn(self, job_id: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crawler.crawl",
                "--job-id",
                str(job_id),
                "--supervisor-pid",
                str(os.getpid()),
                "--input-stdin",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=crawl_environment(os.environ),
            start_new_session=True,  # a terminal's Ctrl-C goes to the supervisor alone
        )
        assert process.stdin is not None
        try:
            process.stdin.write(crawl_input(self.config, self.conninfo))
            process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; its exit code tells the rest
        return process


class Supervision:
    """Watches one crawl process to its end, holding the job lock on ``conn``."""

    def __init__(
        self, conninfo: str, conn: psycopg.Connection[Any], job_id: int, process: Any
    ) -> None:
        self.conninfo = conninfo
        self.conn = conn
        self.job_id = job_id
        self.process: subprocess.Popen[bytes] = process
        # Everything the crawl started, seen so far: once it dies, its children are
        # re-parented and can no longer be found from its pid.
        self.seen: dict[int, psutil.Process] = {}

    def run(self, on_progress: Callable[[Job], None] | None) -> Job:
        job = get_job(self.conn, self.job_id)
        assert job is not None
        deadline = time.monotonic() + SPIDERS[job.spider].timeout_seconds
        while self.process.poll() is None:
            time.sleep(POLL_SECONDS)
            self._remember_descendants()
            try:
                job = get_job(self.conn, self.job_id)
            except psycopg.OperationalError:
                if not self._reconnect():
                    break
                continue
            assert job is not None
            if on_progress is not None:
                on_progress(job)
            timed_out = time.monotonic() > deadline
            if enforce_end(
                self.conn,
                job,
                timeout_seconds=SPIDERS[job.spider].timeout_seconds if timed_out else None,
            ):
                self.stop()
        self.stop()  # a crawl that died on its own may have left Chromium behind
        # Whatever the child managed to record, a dead child's job must not stay running.
        finish_job(
            self.conn,
            self.job_id,
            "failed",
            finish_reason="crashed",
            error_message=f"crawl process exited with code {self.process.returncode} "
            f"before recording its result (see the job log)",
        )
        final = get_job(self.conn, self.job_id)
        assert final is not None
        return final

    def stop(self) -> None:
        """Stops the crawl and everything it started (see :func:`stop_process_tree`)."""
        stop_process_tree(self.process, extra=list(self.seen.values()))

    def _remember_descendants(self) -> None:
        for child in descendants(self.process.pid):
            self.seen.setdefault(child.pid, child)

    def _reconnect(self) -> bool:
        """A new connection with the job lock again; False (crawl stopped) if that fails."""
        self.conn.close()
        conn = relock(self.conninfo, self.job_id, alive=lambda: self._alive())
        if conn is not None:
            self.conn = conn
            return True
        self.stop()
        self.conn = wait_for_connection(self.conninfo)
        return False

    def _alive(self) -> bool:
        self._remember_descendants()
        return self.process.poll() is None


def relock(conninfo: str, job_id: int, alive: Callable[[], bool]) -> psycopg.Connection[Any] | None:
    """After a lost connection: a new one holding the job lock again, tried every second for
    :data:`RECONNECT_SECONDS` while ``alive()``; None if that failed (stop the crawl then)."""
    log.warning("job %d: lost the database connection; reconnecting", job_id)
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline and alive():
        time.sleep(1)
        try:
            conn = connect(conninfo, autocommit=True)
        except DatabaseError:
            continue
        try:
            if lock_job(conn, job_id):
                log.info("job %d: reconnected; supervising again", job_id)
                return conn
        except psycopg.OperationalError:
            pass
        conn.close()
    log.error("job %d: cannot take the job lock again; stopping the crawl", job_id)
    return None


def wait_for_connection(conninfo: str) -> psycopg.Connection[Any]:
    """A connection to record the end with, if the database returns within a minute.

    Raises:
        DatabaseError: it did not; the job is left to the next sweep (no lock holds it).
    """
    deadline = time.monotonic() + RECONNECT_SECONDS
    while True:
        try:
            return connect(conninfo, autocommit=True)
        except DatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def stop_process_tree(
    process: subprocess.Popen[bytes],
    grace: float = GRACE_SECONDS,
    extra: list[psutil.Process] | None = None,
) -> None:
    """SIGTERM to the crawl process, then SIGKILL to it and every descendant.

    Descendants are collected before the first signal (and ``extra`` adds those seen earlier),
    since a dying crawl's children are re-parented out of its tree.
    """

    def unreaped_descendants() -> list[psutil.Process]:
        # Once reaped (returncode set), the pid may already be another process's.
        return descendants(process.pid) if process.returncode is None else []

    tree = {child.pid: child for child in extra or []}
    tree.update({child.pid: child for child in unreaped_descendants()})
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    tree.update({child.pid: child for child in unreaped_descendants()})
    kill_all(list(tree.values()))
    process.wait()
