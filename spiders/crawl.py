"""The crawl process: ``python -m spiders.crawl --job-id N`` runs one job's spider and records
how it ended. The agent's crawl runner starts it; one process per crawl (a Twisted reactor
cannot be restarted, and a process can be timed out, killed and measured)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from scrapy.crawler import CrawlerProcess

from roomwatch.catalog import SPIDERS, check_spider_args
from roomwatch.config import Config, load_config
from roomwatch.errors import JobError, RoomwatchError
from roomwatch.logs import setup_logging
from spiders.base import RoomwatchSpider
from spiders.extensions import json_stats
from spiders.items import register_struct_items
from spiders.settings import crawl_settings
from storage.database import connect, open_database
from storage.jobs import Job, Status, finish_job, get_job

log = logging.getLogger(__name__)


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
    config: Config, conninfo: str, job: Job
) -> tuple[Status, str, str | None, dict[str, Any]]:
    """Runs the job's spider to the end; returns (status, finish_reason, error, stats)."""
    spider_cls = load_spider(job.spider)
    check_spider_args(job.spider, job.args)  # again here: a job row may come from anywhere
    register_struct_items()
    process = CrawlerProcess(
        crawl_settings(config, SPIDERS[job.spider], job.job_id, conninfo),
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit status 0 only if the job succeeded."""
    parser = argparse.ArgumentParser(prog="python -m spiders.crawl")
    parser.add_argument("--job-id", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        config = load_config()
        with open_database(config) as conninfo:
            with connect(conninfo) as conn:
                job = get_job(conn, args.job_id)
            if job is None:
                raise JobError(f"job {args.job_id} does not exist")
            setup_logging(config.log_level, config.data_path / "logs" / f"job-{job.job_id}.log")
            log.info("job %d: %s crawl starting", job.job_id, job.spider)
            status: Status
            try:
                status, reason, error, stats = run_crawl(config, conninfo, job)
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
    except RoomwatchError as exc:
        print(f"roomwatch crawl: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
