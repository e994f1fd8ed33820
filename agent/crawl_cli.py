"""``roomwatch crawl SPIDER``: one crawl now, through the same runner as scheduled crawls, with a
progress line; exit status 0 only if the job succeeded."""

from __future__ import annotations

import sys
import time

from agent.runtime import make_runner, migrate
from roomwatch.catalog import check_spider_args
from roomwatch.config import Config
from roomwatch.errors import ConfigError, JobConflict, JobError
from storage.database import connect, open_database
from storage.jobs import Job, get_job


def parse_spider_args(spider: str, pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` to a dict of arguments ``spider`` takes; anything else is a usage error.

    A pair without ``=``, or an argument not on the spider's allow-list (``roomwatch.catalog``)
    is refused in one line naming it, before the database is even opened.
    """
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-a {pair}: expected KEY=VALUE")
        parsed[key] = value
    try:
        return check_spider_args(spider, parsed)
    except JobError as exc:
        raise ConfigError(f"-a {exc}") from None


class Progress:
    """One status line, rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, job: Job) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last < 5:
            return
        self._last = now
        pages = job.stats.get("response_received_count", 0)
        items = sum(job.items.values())
        line = f"{job.spider} #{job.job_id} {job.status}: {pages} pages, {items} items stored"
        print(
            f"\r{line:<79}" if self._tty else line,
            end="" if self._tty else "\n",
            file=sys.stderr,
            flush=True,
        )


def crawl_command(config: Config, spider: str, pairs: list[str]) -> int:
    """Runs (or joins) a crawl of ``spider`` and reports how it ended."""
    args = parse_spider_args(spider, pairs)
    progress = Progress()
    with open_database(config) as conninfo:
        migrate(conninfo, config)
        runner = make_runner(config, conninfo)
        try:
            job = runner.run(runner.submit(spider, args, "cli").job_id, progress)
        except JobConflict as conflict:
            with connect(conninfo, autocommit=True) as conn:
                existing = get_job(conn, conflict.existing)
            if existing is not None and existing.args != args:
                # Following it would report a run the user did not ask for (say, one without
                # the confirm_loss=true just typed): refuse instead, saying what to do.
                shown = " ".join(f"-a {k}={v}" for k, v in sorted(existing.args.items()))
                print(
                    f"roomwatch: {conflict} with other arguments ({shown or 'none'}): wait for "
                    f"it or cancel it (POST /api/v1/crawls/{conflict.existing}/cancel), then run "
                    "this again",
                    file=sys.stderr,
                )
                return 1
            print(f"roomwatch: {conflict}; following it", file=sys.stderr)
            job = _follow(conninfo, conflict.existing, progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    outcome = f"{job.spider} #{job.job_id} {job.status}"
    items = ", ".join(f"{n} {kind}" for kind, n in sorted(job.items.items())) or "nothing stored"
    print(f"{outcome}: {items}" + (f" ({job.error_message})" if job.error_message else ""))
    if job.log_path:
        print(f"log: {job.log_path}")
    return 0 if job.status == "succeeded" else 1


def _follow(conninfo: str, job_id: int, progress: Progress) -> Job:
    with connect(conninfo, autocommit=True) as conn:
        while True:
            job = get_job(conn, job_id)
            assert job is not None
            progress(job)
            if job.done:
                return job
            time.sleep(0.5)
