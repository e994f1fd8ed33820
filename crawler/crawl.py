"""The crawl process: ``python -m crawler.crawl --job-id N`` runs one job's spider and records
how it ended. The agent's crawl runner starts it; one process per crawl (a Twisted reactor
cannot be restarted, and a process can be timed out, killed and measured).

A crawl never outlives its supervisor (the runner in ``roomwatch run`` or ``roomwatch crawl``):
on Linux the kernel signals it when the supervising thread dies (``PR_SET_PDEATHSIG``), and
everywhere a watchdog thread notices a new parent, or a job lock that nobody holds for
:data:`LOCK_GRACE_SECONDS`. Either way it kills everything it started (Playwright's driver and
Chromium, in process groups of their own) and exits. The supervisor hands over the config and
the database on stdin, so no secret has to travel in the crawl's environment; the crawl only
connects to the database, it never starts or stops the embedded server.

``scrapy crawl`` (by hand, or on a Scrapyd node) runs a job through the same :func:`run_job`
(crawler/commands/crawl.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from scrapy.crawler import CrawlerProcess

from crawler.extensions import json_stats
from crawler.items import register_struct_items
from crawler.settings import crawl_settings
from roomwatch.catalog import SPIDERS, check_spider_args
from roomwatch.config import Config, load_config
from roomwatch.errors import JobError, RoomwatchError
from roomwatch.logs import setup_logging
from roomwatch.processes import die_with_parent, kill_descendants_and_exit
from spiders.base import RoomwatchSpider
from storage.database import connect
from storage.embedded import EmbeddedPostgres
from storage.jobs import Job, Status, finish_job, get_job, record_interrupted, supervision

log = logging.getLogger(__name__)
# How long the job lock may go unheld before the watchdog gives the supervisor up: long enough
# for a supervisor to reconnect after a database restart and take the lock again.
LOCK_GRACE_SECONDS = 90.0
WATCH_SECONDS = 1.0
LOCK_CHECK_SECONDS = 5.0
SUPERVISOR_GONE = signal.SIGUSR1  # the parent-death signal; scrapy leaves it alone
ABANDONED_EXIT = 3


class CrawlInput(msgspec.Struct, frozen=True):
    """What the supervisor writes on the crawl's stdin: its config and the database to use."""

    config: Config
    conninfo: str


def load_spider(name: str) -> type[RoomwatchSpider]:
    """The spider class of ``spiders/<name>.py`` (its ``name`` equals the module name)."""
    if name not in SPIDERS:
        raise JobError(f"unknown spider {name!r}; known: {', '.join(SPIDERS)}")
    try:
        module = importlib.import_module(f"spiders.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"spiders.{name}":
            raise JobError(f"spider {name!r} is not available in this version") from None
        raise
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, RoomwatchSpider)
            and getattr(value, "name", None) == name
        ):
            return value
    raise JobError(f"spiders/{name}.py defines no spider named {name!r}")


def run_crawl(
    config: Config, conninfo: str, job: Job, overrides: Mapping[str, str] | None = None
) -> tuple[Status, str, str | None, dict[str, Any]]:
    """Runs the job's spider to the end; returns (status, finish_reason, error, stats).

    ``overrides``: Scrapy settings given with ``scrapy crawl -s NAME=VALUE`` (Scrapyd's too),
    over roomwatch's own.
    """
    spider_cls = load_spider(job.spider)
    check_spider_args(job.spider, job.args)  # again here: a job row may come from anywhere
    register_struct_items()
    process = CrawlerProcess(
        {**crawl_settings(config, SPIDERS[job.spider], job.job_id, conninfo), **(overrides or {})},
        install_root_handler=False,
    )
    crawler = process.create_crawler(spider_cls)
    startup_errors: list[str] = []
    with connect(conninfo) as conn:
        # The spider's inputs from the database (targets, ...), read here: spiders never connect.
        prepared = spider_cls.prepare(conn, config, dict(job.args))
    process.crawl(crawler, **{**job.args, **prepared}).addErrback(
        lambda failure: startup_errors.append(failure.getErrorMessage())
    )
    process.start()
    stats = json_stats(crawler.stats.get_stats())
    reason = str(stats.get("finish_reason", "not started"))
    spider = crawler.spider if isinstance(crawler.spider, RoomwatchSpider) else None
    if startup_errors:
        return "failed", reason, startup_errors[0], stats
    if spider is not None and spider.failure:
        return "failed", reason, spider.failure, stats
    if reason != "finished":
        return "failed", reason, f"crawl stopped before the end ({reason})", stats
    return "succeeded", reason, None, stats


def follow_supervisor(supervisor_pid: int, job_id: int, conninfo: str) -> None:
    """Makes this process end (with everything it started) when its supervisor is gone."""

    def gone(signum: int, frame: object) -> None:
        _abandon(job_id, conninfo, "its supervisor died")

    signal.signal(SUPERVISOR_GONE, gone)
    die_with_parent(SUPERVISOR_GONE)
    if os.getppid() != supervisor_pid:  # it died before the kernel was asked to tell us
        _abandon(job_id, conninfo, "its supervisor died before it started")
    threading.Thread(
        target=_watch, args=[supervisor_pid, job_id, conninfo], name="watchdog", daemon=True
    ).start()


def _watch(supervisor_pid: int, job_id: int, conninfo: str) -> None:
    """The portable half: a new parent, or a job lock nobody holds for too long."""
    unheld_since: float | None = None
    last_check = 0.0
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != supervisor_pid:
            _abandon(job_id, conninfo, "its supervisor died")
        if time.monotonic() - last_check < LOCK_CHECK_SECONDS:
            continue
        last_check = time.monotonic()
        state = supervision(conninfo, job_id)
        if state is None:
            continue  # the database is away (a restart): the lock grace keeps running
        status, held = state
        if status is None or status == "interrupted":
            _abandon(job_id, conninfo, "the job was interrupted")
        if held:
            unheld_since = None
        elif unheld_since is None:
            unheld_since = time.monotonic()
        elif time.monotonic() - unheld_since > LOCK_GRACE_SECONDS:
            _abandon(job_id, conninfo, "nobody holds its job lock any more")


def _abandon(job_id: int, conninfo: str, why: str) -> None:
    """Records the job ``interrupted`` (best effort, briefly), then ends this process tree."""
    log.warning("job %d: stopping the crawl: %s", job_id, why)
    # Nobody else will record it soon if no agent runs; a database that does not answer
    # within a few seconds must not keep Chromium alive, so the sweep is left to catch it.
    recorder = threading.Thread(target=record_interrupted, args=[conninfo, job_id], daemon=True)
    recorder.start()
    recorder.join(3)
    kill_descendants_and_exit(ABANDONED_EXIT)


def read_input(from_stdin: bool) -> CrawlInput:
    """The supervisor's config and database; by hand (no stdin) the usual config is read."""
    if from_stdin:
        try:
            return msgspec.json.decode(sys.stdin.buffer.read(), type=CrawlInput)
        except msgspec.ValidationError as exc:
            raise JobError(f"crawl input on stdin: {exc}") from None
    config = load_config()
    if config.database.url:
        return CrawlInput(config, config.database.url)
    # Only connect: the embedded server belongs to the agent or CLI that started it.
    return CrawlInput(
        config, EmbeddedPostgres(config.data_path, config.database.embedded_os_user).conninfo
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 0 only if the job succeeded."""
    parser = argparse.ArgumentParser(prog="python -m crawler.crawl")
    parser.add_argument("--job-id", type=int, required=True)
    parser.add_argument("--supervisor-pid", type=int, help="die with this process")
    parser.add_argument("--input-stdin", action="store_true", help="config as JSON on stdin")
    args = parser.parse_args(argv)
    try:
        crawl_input = read_input(args.input_stdin)
        config, conninfo = crawl_input.config, crawl_input.conninfo
        if args.supervisor_pid is not None:
            follow_supervisor(args.supervisor_pid, args.job_id, conninfo)
        with connect(conninfo) as conn:
            job = get_job(conn, args.job_id)
        if job is None:
            raise JobError(f"job {args.job_id} does not exist")
        return run_job(config, conninfo, job, config.job_log(job.job_id))
    except RoomwatchError as exc:
        print(f"roomwatch crawl: {exc}", file=sys.stderr)
        return 1


def run_job(
    config: Config,
    conninfo: str,
    job: Job,
    log_file: Path,
    overrides: Mapping[str, str] | None = None,
) -> int:
    """Runs a started job's crawl here and records how it ended; 0 only if it succeeded."""
    setup_logging(config.log_level, log_file)
    log.info("job %d: %s crawl starting", job.job_id, job.spider)
    status: Status
    try:
        status, reason, error, stats = run_crawl(config, conninfo, job, overrides)
    except RoomwatchError as exc:
        status, reason, error, stats = "failed", "not started", str(exc), {}
    with connect(conninfo) as conn:
        # A no-op if the runner already ended the job (cancel, timeout).
        finish_job(
            conn,
            job.job_id,
            status,
            finish_reason=reason,
            error_message=error,
            stats=stats,
        )
    log.info("job %d: %s (%s)%s", job.job_id, status, reason, f": {error}" if error else "")
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
