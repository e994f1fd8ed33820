"""Scrapy settings for one crawl, built from roomwatch's config (no settings.py module magic)."""

from __future__ import annotations

from typing import Any

from roomwatch import __version__
from roomwatch.catalog import SpiderInfo
from roomwatch.config import Config

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def crawl_settings(
    config: Config, spider: SpiderInfo, job_id: int, conninfo: str
) -> dict[str, Any]:
    """The settings of one crawl process.

    Browser spiders get scrapy-playwright as the download handler for both schemes (one handler
    instance, hence one browser); API spiders keep Scrapy's own HTTP stack.
    """
    settings: dict[str, Any] = {
        "ROOMWATCH_CONFIG": config,
        "ROOMWATCH_CONNINFO": conninfo,
        "ROOMWATCH_JOB_ID": job_id,
        "BOT_NAME": f"roomwatch/{__version__}",
        "USER_AGENT": USER_AGENT,
        "ROBOTSTXT_OBEY": False,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # never open a control port from a crawl
        "LOG_LEVEL": config.log_level,
        "LOG_ENABLED": False,  # the crawl process configures logging itself (with redaction)
        "COOKIES_ENABLED": spider.browser,
        "CONCURRENT_REQUESTS": 8,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 4,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "HTTPERROR_ALLOW_ALL": False,
        "ITEM_PIPELINES": {"spiders.pipelines.StoragePipeline": 500},
        "EXTENSIONS": {"spiders.extensions.JobProgress": 500},
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "FEED_EXPORT_ENCODING": "utf-8",
    }
    if spider.browser:
        handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
        settings["DOWNLOAD_HANDLERS"] = {"http": handler, "https": handler}
        settings["CONCURRENT_REQUESTS"] = 1
    return settings
