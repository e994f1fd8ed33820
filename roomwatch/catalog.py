"""The spiders roomwatch knows and how each may run; plain data every package may read.

The control API validates spider names against this without importing Scrapy, and the crawl
runner takes its rules from here (browser crawls run one at a time; each has a timeout).
"""

from __future__ import annotations

import msgspec


class SpiderInfo(msgspec.Struct, frozen=True):
    """How one spider runs.

    Attributes:
        name: the spider's name, equal to its module name in ``spiders/``.
        browser: drives Chromium (at most one browser crawl runs at a time).
        timeout_seconds: the crawl process is terminated, then killed, after this long.
        description: one line for people.
    """

    name: str
    browser: bool
    timeout_seconds: int
    description: str


SPIDERS: dict[str, SpiderInfo] = {
    info.name: info
    for info in (
        SpiderInfo("affiliate", False, 600, "Affiliate API online-rooms feed"),
        SpiderInfo("cbhours_live", False, 900, "CBHours live stats of trophy persons"),
        SpiderInfo("cbhours_activity", False, 3600, "CBHours 60-day activity and backfill"),
        SpiderInfo("followed_cams", True, 900, "logged-in followed-cams lists (online, offline)"),
        SpiderInfo("followers", True, 900, "logged-in followers list"),
    )
}
