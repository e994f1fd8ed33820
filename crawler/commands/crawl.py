"""``scrapy crawl SPIDER [-a key=value ...]``: Scrapy's own command name, roomwatch's crawl.

It replaces Scrapy's ``crawl`` (``COMMANDS_MODULE``), so a crawl started from the project's
root, or by Scrapyd from the project's egg, is a recorded job with roomwatch's settings,
pipelines and checks, exactly as one the local runner starts (``crawler.crawl.run_job``).
Scrapyd's ``_job`` argument names the job row the agent started; ``-s LOG_FILE=...`` (Scrapyd
sets it) is where the job logs, other ``-s NAME=VALUE`` override Scrapy settings of the crawl.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from scrapy.commands import BaseRunSpiderCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import arglist_to_dict

from crawler.crawl import (
    ABANDONED_EXIT,
    WATCH_SECONDS,
    follow_supervisor,
    load_spider,
    read_input,
    run_job,
)
from roomwatch.catalog import SPIDERS, check_spider_args, with_account
from roomwatch.config import Config
from roomwatch.errors import JobError, RoomwatchError
from roomwatch.processes import kill_descendants_and_exit
from storage.database import connect
from storage.jobs import Job, create_job, get_job, lock_job, must_stop, start_job
from storage.settings import register_stream_accounts

log = logging.getLogger(__name__)
SELF_STOP_GRACE_SECONDS = 10.0  # a ``scrapy crawl`` told to stop, before it kills its tree


class Command(BaseRunSpiderCommand):
    requires_project = True
    requires_crawler_process = False  # the crawl makes its own, from roomwatch's config

    def syntax(self) -> str:
        return "[options] <spider>"

    def short_desc(self) -> str:
        return "Run a roomwatch spider as a recorded crawl job (config from ROOMWATCH_*)"

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("name one spider")
        spider_args = {str(key): str(value) for key, value in opts.spargs.items()}
        scrapyd_job = spider_args.pop("_job", None)
        spider_args.pop("_version", None)  # Scrapyd's too: the egg version it runs
        overrides = {str(k): str(v) for k, v in arglist_to_dict(opts.set).items()}
        log_file = overrides.pop("LOG_FILE", None) or opts.logfile
        self.exitcode = crawl_named(
            args[0],
            spider_args,
            scrapyd_job=scrapyd_job,
            log_file=Path(log_file) if log_file else None,
            overrides=overrides,
        )


def crawl_named(
    spider: str,
    args: dict[str, str],
    *,
    scrapyd_job: str | None = None,
    log_file: Path | None = None,
    overrides: Mapping[str, str] | None = None,
) -> int:
    """``scrapy crawl SPIDER [-a key=value ...]``: one recorded job,
    with the config of the environment, in this process; exit status 0 only if it succeeded.

    By hand, the crawl queues its own job (trigger ``cli``) and supervises it: it holds the job
    lock, and stops on a cancel request or the spider's timeout. On a Scrapyd node
    (``scrapyd_job``, Scrapyd's ``_job`` argument: the agent makes it the job's id), the agent
    has started the job and supervises it; the crawl checks that the row is the one asked for,
    and ends with the node (Scrapyd's process, its parent) or when nobody holds the job lock
    any more, as a crawl process of the local runner does.
    """
    try:
        crawl_input = read_input(from_stdin=False)
        config, conninfo = crawl_input.config, crawl_input.conninfo
        if scrapyd_job is None:
            with _own_job(config, conninfo, spider, args, log_file) as job:
                return run_job(
                    config, conninfo, job, log_file or config.job_log(job.job_id), overrides
                )
        job = _scheduled_job(conninfo, spider, args, scrapyd_job)
        follow_supervisor(os.getppid(), job.job_id, conninfo)
        return run_job(config, conninfo, job, log_file or config.job_log(job.job_id), overrides)
    except RoomwatchError as exc:
        print(f"roomwatch crawl: {exc}", file=sys.stderr)
        return 1


def _scheduled_job(conninfo: str, spider: str, args: dict[str, str], scrapyd_job: str) -> Job:
    """The running job a Scrapyd node was asked to crawl, if it is that crawl.

    Raises:
        JobError: no such job, another spider or arguments, or no longer running (cancelled
            before the node started it): the row is not this crawl's to touch.
    """
    if not scrapyd_job.isdigit():
        raise JobError(f"_job {scrapyd_job!r}: expected a crawl job id")
    with connect(conninfo) as conn:
        job = get_job(conn, int(scrapyd_job))
    if job is None:
        raise JobError(f"job {scrapyd_job} does not exist")
    if job.spider != spider or check_spider_args(spider, args) != check_spider_args(
        spider, job.args
    ):
        raise JobError(f"job {job.job_id} is another crawl (a {job.spider} crawl)")
    if job.status != "running":
        raise JobError(f"job {job.job_id} is {job.status}, not running: not crawling")
    return job


@contextlib.contextmanager
def _own_job(
    config: Config, conninfo: str, spider: str, args: dict[str, str], log_file: Path | None
) -> Iterator[Job]:
    """A job of this process's own, running and locked for the life of the block."""
    load_spider(spider)  # an unknown spider queues nothing
    conn = connect(conninfo, autocommit=True)
    try:
        register_stream_accounts(conn, config)
        job = create_job(
            conn, spider, check_spider_args(spider, with_account(spider, args, config)), "cli"
        )
        log_path = log_file or config.job_log(job.job_id)
        if not lock_job(conn, job.job_id) or not start_job(
            conn, job.job_id, os.getpid(), str(log_path)
        ):
            raise JobError(f"job {job.job_id} was taken or cancelled before it started")
        threading.Thread(
            target=_supervise_self,
            args=[conninfo, job.job_id, SPIDERS[spider].timeout_seconds],
            name="self-supervision",
            daemon=True,
        ).start()
        yield job
    finally:
        conn.close()


def _supervise_self(conninfo: str, job_id: int, timeout_seconds: int) -> None:
    """A ``scrapy crawl`` by hand stops itself as a runner would stop it (on a cancel request or
    its timeout: ``storage.jobs.enforce_end``), gracefully, then at once if that takes long."""
    deadline = time.monotonic() + timeout_seconds
    while not must_stop(
        conninfo,
        job_id,
        timeout_seconds=timeout_seconds if time.monotonic() > deadline else None,
    ):
        time.sleep(WATCH_SECONDS)
    log.warning("job %d: stopping the crawl (cancelled or timed out)", job_id)
    os.kill(os.getpid(), signal.SIGTERM)  # Scrapy's graceful shutdown
    time.sleep(SELF_STOP_GRACE_SECONDS)
    kill_descendants_and_exit(ABANDONED_EXIT)
