"""Where the Scrapyd nodes of ``scrapyd.urls`` are and how to log in to them: one place for the
agent's client (``agent/scrapyd_runner.py``, ``roomwatch deploy``) and the API, which reads a
node's crawl log (``GET /crawls/{id}/log``). No I/O here: addresses only.

A node is named by host and port (``node1.example:6800``) in every message; its credentials
(in its URL, or ``scrapyd.username``/``password``) stay in :attr:`NodeAddress.auth`, which no
``repr`` shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from roomwatch.config import ScrapydConfig

# What a log URL of a node may name below its root: Scrapyd's ``logs/PROJECT/SPIDER/JOB.log``.
_LOG_PATH = re.compile(r"logs/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+\.log")


@dataclass(frozen=True)
class NodeAddress:
    """One node: ``name`` (host:port), ``url`` (its root, no credentials, ending in ``/``) and
    the basic auth to send (None: none)."""

    name: str
    url: str
    auth: tuple[str, str] | None = field(default=None, repr=False)

    def log_url(self, project: str, spider: str, job_id: int) -> str:
        """Where the node serves a crawl's log (Scrapyd's ``logs_dir``): a job's ``log_path``."""
        return f"{self.url}logs/{project}/{spider}/{job_id}.log"


def node_address(url: str, settings: ScrapydConfig) -> NodeAddress:
    """The address of the node at ``url`` (one of ``scrapyd.urls``)."""
    parts = urlsplit(url)
    auth: tuple[str, str] | None = None
    if parts.username:
        auth = (parts.username, parts.password or "")
    elif settings.username:
        auth = (settings.username, settings.password)
    name = _netloc(parts.hostname or "", parts.port)
    root = urlunsplit((parts.scheme.lower(), name, parts.path.rstrip("/") + "/", "", ""))
    return NodeAddress(name=name, url=root, auth=auth)


def node_addresses(settings: ScrapydConfig) -> list[NodeAddress]:
    """Every node of ``scrapyd.urls``, in order."""
    return [node_address(url, settings) for url in settings.urls]


def log_node(settings: ScrapydConfig, url: str) -> tuple[NodeAddress, str] | None:
    """The configured node that serves the log at ``url`` (a job's ``log_path``) and the log's
    path below the node's root; None when ``url`` is anything else (another host or port,
    credentials, a query, a path that is not a Scrapyd log's), so that a URL read from the
    database is never fetched unless it is a configured node's log."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return None
    # Rebuilt as node_address() builds a root (hostname is lower case), then compared.
    here = urlunsplit(
        (parts.scheme.lower(), _netloc(parts.hostname or "", port), parts.path, "", "")
    )
    for node in node_addresses(settings):
        if here.startswith(node.url) and _LOG_PATH.fullmatch(here[len(node.url) :]):
            return node, here[len(node.url) :]
    return None


def _netloc(host: str, port: int | None) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return netloc if port is None else f"{netloc}:{port}"
