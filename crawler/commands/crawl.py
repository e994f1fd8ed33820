"""``scrapy crawl SPIDER [-a key=value ...]``: Scrapy's own command name, roomwatch's crawl.

It replaces Scrapy's ``crawl`` (``COMMANDS_MODULE``), so a crawl started from the project's
root, or by Scrapyd from the project's egg, is a recorded job with roomwatch's settings,
pipelines and checks, exactly as one the local runner starts (``crawler.crawl.crawl_named``).
Scrapyd's ``_job`` argument names the job row the agent started; ``-s LOG_FILE=...`` (Scrapyd
sets it) is where the job logs, other ``-s NAME=VALUE`` override Scrapy settings of the crawl.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scrapy.commands import BaseRunSpiderCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import arglist_to_dict

from crawler.crawl import crawl_named


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
