"""Scrapy settings for one crawl, built from roomwatch's config (no settings.py module magic)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from roomwatch import __version__
from roomwatch.catalog import SpiderInfo
from roomwatch.config import Config
from sessions.browser import launch_options
from storage.images import images_dir

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


HEAVY_RESOURCES = frozenset({"image", "media", "font"})
DOWNLOAD_MAXSIZE = 4 * 1024 * 1024
"""The largest answer a crawl reads; a bigger one is abandoned and fails its request (and so
the job). Scrapy's default is 1 GiB, which lets one broken or hostile upstream fill the crawl's
memory. CBHours answers are a few kilobytes; spiders that need more say so in their
``custom_settings`` (the Affiliate feed's pages of 500 rooms are about 0.6 MB). Thumbnails have
their own limit, ``images.max_bytes``. Browser crawls are not covered: Chromium fetches those
pages, not Scrapy."""
DOWNLOAD_WARNSIZE = 1024 * 1024
"""An answer bigger than this is logged (once per request) but still read."""


def skip_heavy_resources(request: Any) -> bool:
    """``PLAYWRIGHT_ABORT_REQUEST``: the browser does not download images, media and fonts."""
    return bool(request.resource_type in HEAVY_RESOURCES)


def crawl_settings(
    config: Config, spider: SpiderInfo, job_id: int, conninfo: str
) -> dict[str, Any]:
    """The settings of one crawl process.

    Browser spiders get scrapy-playwright as the download handler of the site's scheme only:
    Scrapy makes one handler instance per scheme, and each would start its own Playwright driver
    and browser (the browser itself follows any redirect to the other scheme). It runs
    roomwatch's Chromium and flags, sends the browser's own headers and cookies (the session's)
    and skips heavy resources when ``browser.block_resources`` says so. API spiders keep
    Scrapy's own HTTP stack.
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
        "DOWNLOAD_MAXSIZE": DOWNLOAD_MAXSIZE,
        "DOWNLOAD_WARNSIZE": DOWNLOAD_WARNSIZE,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 4,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "HTTPERROR_ALLOW_ALL": False,
        "ITEM_PIPELINES": {"crawler.pipelines.StoragePipeline": 500},
        "EXTENSIONS": {
            "crawler.database.CrawlDatabase": 100,  # the pool: storage pipeline, JobProgress
            "crawler.extensions.JobProgress": 500,
            "crawler.extensions.SpiderErrors": 510,  # any spider or item error fails the job
        },
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "FEED_EXPORT_ENCODING": "utf-8",
    }
    # Every crawl paces its requests to CBHours with the others (one per interval, agent-wide).
    settings["DOWNLOADER_MIDDLEWARES"] = {"crawler.middlewares.PolitenessMiddleware": 990}
    if not spider.browser:
        # API crawls back off exponentially on 429/5xx (Retry-After honoured) instead.
        settings["DOWNLOADER_MIDDLEWARES"] |= {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.middlewares.BackoffMiddleware": 550,
        }
    if not spider.browser and config.images.enabled:
        # API crawls download thumbnails of persons of interest (crawler/images.py).
        settings["ITEM_PIPELINES"] = {
            **settings["ITEM_PIPELINES"],
            "crawler.images.ThumbnailPipeline": 400,
        }
        settings["IMAGES_STORE"] = (
            str(images_dir(config.data_path)) if config.images.store == "files" else "database:"
        )
    if spider.browser:
        # One browser per account, wherever the crawl runs (crawler/account_lock.py).
        settings["EXTENSIONS"] = {**settings["EXTENSIONS"], "crawler.account_lock.AccountLock": 200}
        handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
        scheme = urlsplit(config.chaturbate.url).scheme
        settings["DOWNLOAD_HANDLERS"] = {scheme: handler}
        settings["CONCURRENT_REQUESTS"] = 1
        settings["PLAYWRIGHT_BROWSER_TYPE"] = "chromium"
        settings["PLAYWRIGHT_LAUNCH_OPTIONS"] = launch_options(config.browser)
        settings["PLAYWRIGHT_MAX_CONTEXTS"] = 1
        settings["PLAYWRIGHT_PROCESS_REQUEST_HEADERS"] = None
        if config.browser.block_resources:
            settings["PLAYWRIGHT_ABORT_REQUEST"] = skip_heavy_resources
            # Images are then not even requested: each request the predicate aborts is still a
            # round trip through scrapy-playwright's routing in Python (about 3 ms; a followed
            # list of 1,500 rooms has 1,500 thumbnails). The predicate covers the rest.
            settings["PLAYWRIGHT_LAUNCH_OPTIONS"]["args"].append(
                "--blink-settings=imagesEnabled=false"
            )
    return settings
