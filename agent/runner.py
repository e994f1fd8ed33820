"""The crawl runner: each job runs in its own process, watched for exit, cancel and timeout.

Rules: the job row is the truth (``storage.jobs``); a crawl process gets SIGTERM to stop
gracefully and, after a grace period, SIGKILL for its whole process group (Chromium included);
a process that dies without recording its end leaves its job ``failed`` with the exit code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from roomwatch.catalog import SPIDERS
from roomwatch.config import Config
from roomwatch.errors import JobError
from storage.database import connect
from storage.jobs import Job, Trigger, create_job, finish_job, get_job, lock_job, start_job

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
GRACE_SECONDS = 10.0


class CrawlRunner:
    """Starts and supervises crawl processes for one agent (or one ``roomwatch crawl``)."""

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
            return create_job(conn, spider, args, trigger)

    def run(self, job_id: int, on_progress: Callable[[Job], None] | None = None) -> Job:
        """Runs a queued job to its end in a child process; returns the final job row."""
        log_path = self.config.data_path / "logs" / f"job-{job_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with connect(self.conninfo, autocommit=True) as conn:
            # The supervisor lock first: it marks this job as watched for as long as this
            # connection lives. Not getting it, or the job no longer being queued, means
            # another worker took it or it was cancelled meanwhile.
            if not lock_job(conn, job_id) or not start_job(
                conn, job_id, os.getpid(), str(log_path)
            ):
                job = get_job(conn, job_id)
                assert job is not None
                return job
            process = subprocess.Popen(
                [sys.executable, "-m", "spiders.crawl", "--job-id", str(job_id)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: Chromium dies with it
            )
            conn.execute("UPDATE crawl_jobs SET pid = %s WHERE job_id = %s", [process.pid, job_id])
            return self._supervise(conn, job_id, process, on_progress)

    def _supervise(
        self,
        conn: Any,
        job_id: int,
        process: subprocess.Popen[bytes],
        on_progress: Callable[[Job], None] | None,
    ) -> Job:
        job = get_job(conn, job_id)
        assert job is not None
        deadline = time.monotonic() + SPIDERS[job.spider].timeout_seconds
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            job = get_job(conn, job_id)
            assert job is not None
            if on_progress is not None:
                on_progress(job)
            if job.cancel_requested_at is not None:
                finish_job(
                    conn,
                    job_id,
                    "cancelled",
                    finish_reason="cancelled",
                    error_message="cancelled on request",
                )
                stop_process_tree(process)
            elif time.monotonic() > deadline:
                seconds = SPIDERS[job.spider].timeout_seconds
                finish_job(
                    conn,
                    job_id,
                    "failed",
                    finish_reason="timeout",
                    error_message=f"timed out after {seconds} s",
                )
                stop_process_tree(process)
        # A crawl process that died on its own may leave Chromium behind in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # Whatever the child managed to record, a dead child's job must not stay running.
        finish_job(
            conn,
            job_id,
            "failed",
            finish_reason="crashed",
            error_message=f"crawl process exited with code {process.returncode} "
            f"before recording its result (see the job log)",
        )
        final = get_job(conn, job_id)
        assert final is not None
        return final


def stop_process_tree(process: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to the crawl process, then SIGKILL to its group and every descendant."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.wait()
