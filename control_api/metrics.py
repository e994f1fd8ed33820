"""``GET /metrics``: the agent's figures in the Prometheus text format.

Two sources. The API's own requests are counted in this process by Litestar's Prometheus
middleware (:data:`HTTP_METRICS`, labelled by route template, never by the raw path, which
may hold a username), in prometheus-client's default registry beside its process and Python
collectors. Everything else lives in the database and is read at scrape time
(:func:`storage.metrics.read_figures`, one statement with a short time limit) into
:class:`DatabaseCollector`: crawl figures come from the job rows the crawl processes write,
so they are right whichever machine ran the crawl.

The route needs the API token like any other unless ``metrics.public`` is set (allowed only
on loopback, see :mod:`roomwatch.config`). No label holds a token, a URL or a cookie: labels
are spider names, statuses, item kinds, HTTP status codes, exception class names, owner
account names and table names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import psycopg
from litestar import Controller, Response, get
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from control_api.params import Pool
from storage.jobs import FINAL_STATUSES
from storage.metrics import Figures, read_figures

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
TIMEOUT_SECONDS = 2.0
"""How long a scrape waits for the database (a pool connection, then the statement); past it
the scrape answers without the database's figures and with ``roomwatch_database_up 0``."""

HTTP_METRICS = PrometheusConfig(app_name="roomwatch", prefix="roomwatch_http", group_path=True)
"""``roomwatch_http_requests_total`` and ``roomwatch_http_request_duration_seconds`` (by
``path`` template, ``method``, ``status_code``), ``..._requests_in_progress`` and
``..._requests_error_total`` (5xx)."""


class CrawlCounter(msgspec.Struct, frozen=True):
    """A counter served from the crawls' Scrapy stats, per spider.

    Attributes:
        name: the metric's name, without ``_total``.
        help: its help text.
        stat: the Scrapy stat; ending in ``/``, every stat under it, the rest of its key
            becoming the ``label``.
        label: the label named by the rest of the key, for a ``stat`` ending in ``/``.
        skip: keys under ``stat`` that are not this counter.
    """

    name: str
    help: str
    stat: str
    label: str = ""
    skip: frozenset[str] = frozenset()

    def key(self, stat: str) -> str | None:
        """The label value ``stat`` adds to this counter ("" for a plain one), None if it is
        not one of this counter's stats."""
        if not self.label:
            return "" if stat == self.stat else None
        rest = stat.removeprefix(self.stat)
        return rest if rest != stat and rest and rest not in self.skip else None


CRAWL_COUNTERS = (
    CrawlCounter(
        "roomwatch_crawl_requests", "Requests crawls sent upstream.", "downloader/request_count"
    ),
    CrawlCounter(
        "roomwatch_crawl_responses",
        "Upstream responses received by crawls, by HTTP status code.",
        "downloader/response_status_count/",
        "code",
    ),
    CrawlCounter(
        "roomwatch_crawl_download_errors",
        "Upstream requests that got no response, by exception.",
        "downloader/exception_type_count/",
        "exception",
    ),
    CrawlCounter(
        "roomwatch_crawl_items",
        "Rows crawls stored, by item kind.",
        "items/",
        "kind",
    ),
    CrawlCounter("roomwatch_crawl_errors", "Errors crawls logged.", "log_count/ERROR"),
    CrawlCounter("roomwatch_crawl_retries", "Requests crawls retried.", "retry/count"),
    CrawlCounter(
        "roomwatch_crawl_backoffs",
        "Back-offs of API crawls (429, 5xx, other, exception).",
        "backoff/",
        "reason",
        frozenset({"wait_seconds"}),
    ),
    CrawlCounter(
        "roomwatch_crawl_backoff_wait_seconds",
        "Seconds crawls waited backing off.",
        "backoff/wait_seconds",
    ),
    CrawlCounter(
        "roomwatch_crawl_limiter_waits",
        "Requests that went through a rate limiter (the CBHours pace).",
        "politeness/requests",
    ),
    CrawlCounter(
        "roomwatch_crawl_limiter_wait_seconds",
        "Seconds crawls waited for a rate limiter (the CBHours pace, the Events API's "
        "requests per minute).",
        "politeness/wait_seconds",
    ),
)


class DatabaseCollector(Collector):
    """The families of one scrape's :class:`~storage.metrics.Figures`; ``None`` (the database
    did not answer in time) yields ``roomwatch_database_up 0`` alone."""

    def __init__(self, figures: Figures | None) -> None:
        self._figures = figures

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "roomwatch_database_up",
            "1 if this scrape read the database's figures in time, else 0.",
            value=int(self._figures is not None),
        )
        yield up
        if self._figures is not None:
            yield from _families(self._figures)


def _families(figures: Figures) -> Iterator[Metric]:
    finished = CounterMetricFamily(
        "roomwatch_crawl_jobs_finished",
        "Crawl jobs that ended, by spider, account (empty for no account) and final status.",
        labels=["spider", "account", "status"],
    )
    active = GaugeMetricFamily(
        "roomwatch_crawl_jobs_active",
        "Crawl jobs queued or running now, by spider, account (empty for none) and status.",
        labels=["spider", "account", "status"],
    )
    for job in figures.jobs:
        family = finished if job.status in FINAL_STATUSES else active
        family.add_metric([job.spider, job.account, job.status], job.jobs)
    yield finished
    yield active
    yield from _crawl_counters(figures)
    yield _gauge(
        "roomwatch_login_sessions",
        "Stored login sessions, by account and status (valid, expired, unknown).",
        ["account", "status"],
        (([c.account, c.status], c.sessions) for c in figures.sessions),
    )
    yield GaugeMetricFamily("roomwatch_persons", "Persons known (exact).", figures.persons.persons)
    yield GaugeMetricFamily(
        "roomwatch_persons_watched", "Persons on the watch list (exact).", figures.persons.watched
    )
    yield _gauge(
        "roomwatch_table_estimated_rows",
        "Live rows per table, PostgreSQL's estimate (n_live_tup), partitions summed.",
        ["table"],
        (([t.table], t.rows) for t in figures.tables),
    )
    yield GaugeMetricFamily(
        "roomwatch_database_size_bytes", "Size of the database on disk.", figures.database_bytes
    )
    yield _gauge(
        "roomwatch_event_stream_lag_seconds",
        "Seconds since the newest stored Events API event, by account (a quiet room grows it too).",
        ["account"],
        (([s.account], s.seconds) for s in figures.streams),
    )


def _gauge(
    name: str, help_text: str, labels: list[str], samples: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _crawl_counters(figures: Figures) -> Iterator[Metric]:
    for counter in CRAWL_COUNTERS:
        labels = ["spider", counter.label] if counter.label else ["spider"]
        family = CounterMetricFamily(counter.name, counter.help, labels=labels)
        for stat in figures.stats:
            key = counter.key(stat.stat)
            if key is not None:
                family.add_metric([stat.spider, key] if key else [stat.spider], stat.value)
        yield family


async def scrape_figures(pool: AsyncConnectionPool[Any]) -> Figures | None:
    """The database's figures, or None when it does not answer within the time limit."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS + 1):  # backstop: the server's own limit
            async with pool.connection(timeout=TIMEOUT_SECONDS) as conn:
                return await read_figures(conn, TIMEOUT_SECONDS)
    except (TimeoutError, psycopg.OperationalError) as exc:
        # The pool's timeout and a cancelled statement are both OperationalErrors.
        log.warning("metrics: the database's figures were not read: %s", type(exc).__name__)
        return None


class MetricsController(Controller):
    """``GET /metrics`` (outside the API prefix, where Prometheus looks)."""

    path = METRICS_PATH
    include_in_schema = False

    @get()
    async def metrics(self, pool: Pool) -> Response[bytes]:
        figures = await scrape_figures(pool)
        body = generate_latest(REGISTRY) + generate_latest(DatabaseCollector(figures))
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
