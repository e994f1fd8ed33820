"""The pages' Jinja environment: templates from ``web/templates``, autoescape always on.

Everything a broadcaster controls (names, subjects, tags) reaches templates as plain strings
and is escaped on output; no template marks such a value ``|safe``. Server-drawn SVG
(:mod:`web.charts`) is built with escaping of its own and passed as ``Markup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from web import sources

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=sources.format_time,
        age=sources.format_age,
        duration=sources.format_duration,
        src=sources.source_class,
        src_title=sources.source_title,
    )
    env.globals.update(source_labels=sources.LABELS, query_url=query_url)
    return env


def query_url(path: str, params: Mapping[str, str], **changes: str) -> str:
    """``path`` with ``params`` as its query, some changed (a new sort or tag starts the list
    over, so it drops the cursor)."""
    merged = {k: v for k, v in params.items() if k != "cursor"}
    merged.update(changes)
    query = urlencode({k: v for k, v in merged.items() if v})
    return f"{path}?{query}" if query else path


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def page(
    request: Request[Any, Any, Any], name: str, status_code: int = 200, **context: Any
) -> Template:
    """The response of a page: ``name`` rendered with ``context`` plus what every page shows
    (the signed-in session's CSRF token for its forms, the path for the navigation, and the
    account switcher's query). A page that reads one account's follow state passes
    ``accounts`` (every account) and ``account`` (the one shown): with several, the header
    shows a switcher that keeps the choice in the URL (``?account=``), and the web session
    remembers it (:mod:`web.account_choice`)."""
    session = getattr(request.state, "web_session", None)
    return Template(
        template_name=name,
        context={
            "accounts": (),
            "account": None,
            **context,
            "csrf_token": session.csrf if session else "",
            "path": request.url.path,
            # The account switcher resubmits the page's query but its account and position.
            "switch_query": {
                k: v for k, v in request.query_params.items() if k not in ("account", "cursor")
            },
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )
