"""How the pages show where a value came from: one CSS class and one label per source.

The colours themselves are in ``static/style.css`` (``.src-<name>``), once; stale or last-known
values are grey whatever their source.
"""

from __future__ import annotations

import datetime as dt

from storage.person_queries import FieldSource

# Source name -> label of the legend, in the order of INTERFACE.md's priorities.
LABELS: dict[str, str] = {
    "affiliate": "Affiliate feed",
    "cbhours": "CBHours",
    "followed_cams": "Followed list (logged in)",
    "followers": "Followers list (logged in)",
    "html_import": "Imported page",
    "profile_cache": "Profile cache",
    "events_api": "Events API (your room)",
    "stats_api": "Stats API (your room)",
}
STALE_CLASS = "src-stale"


def name_class(source: str) -> str:
    """``src-<source>`` for a known source (the stylesheet's colour), else ``src-other``."""
    return f"src-{source}" if source in LABELS else "src-other"


def source_class(source: FieldSource | None) -> str:
    """The CSS class of a value from ``source``: its colour, or grey when stale or unknown."""
    if source is None or source.source is None:
        return ""
    if source.stale:
        return STALE_CLASS
    return name_class(source.source)


def source_title(source: FieldSource | None) -> str:
    """The hover text of a value: which source said it, and when."""
    if source is None or source.source is None:
        return "no source"
    label = LABELS.get(source.source, source.source)
    when = format_time(source.observed_at) if source.observed_at else "unknown time"
    stale = " (stale: last known)" if source.stale else ""
    return f"{label}, observed {when}{stale}"


def format_time(moment: dt.datetime | None) -> str:
    """A UTC time as people read it: ``2026-12-02 10:45 UTC``."""
    if moment is None:
        return ""
    if moment.utcoffset():
        moment = moment.astimezone(dt.UTC)
    # isoformat, not strftime: a table page formats hundreds of these (bench/ui.py).
    return f"{moment.isoformat(' ', 'minutes')[:16]} UTC"


def format_age(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago, shortest unit first that fits: ``42 s``, ``5 min``, ``3 h``, ``12 d``."""
    if moment is None:
        return ""
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def format_duration(seconds: float | None) -> str:
    """A span as ``3 d 4 h``, ``5 h 12 min``, ``7 min`` or, under a minute, ``42 s``."""
    if seconds is None:
        return ""
    total = int(seconds)
    if total < 60:
        return f"{max(0, total)} s"  # a crawl's duration: "0 min" would say nothing
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
