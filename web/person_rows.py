"""Rows of person tables (Users, Follow): each shown value with its source's class and hover text.

Built in Python rather than in template macros: a page of 50 persons has some 600 coloured
values, and computing each value's class and title once per source observation here costs a
fraction of what a macro call per value did (bench/ui.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from storage.person_list import PersonSummary
from storage.person_queries import FieldSource, PersonSources
from web.sources import source_class, source_title

# The coloured columns of a person row, in order: (field, numeric?).
COLUMNS: tuple[tuple[str, bool], ...] = (
    ("display_name", False),
    ("online", False),
    ("viewers", True),
    ("followers", True),
    ("rank", True),
    ("grank", True),
)


class Cell(NamedTuple):
    """One shown value: its text (None: nothing known), colour class and hover text."""

    field: str
    text: str | None
    numeric: bool
    css: str
    title: str
    source: str


class PersonRow(NamedTuple):
    person: PersonSummary
    cells: tuple[Cell, ...]
    tags: Cell
    fresh: dt.datetime | None
    extra: dict[str, Any]


def newest_observation(sources: PersonSources | None) -> dt.datetime | None:
    """When the newest of a person's merged values was observed (the freshness column)."""
    if sources is None:
        return None
    times = [
        source.observed_at
        for source in (getattr(sources, name) for name in PersonSources.__struct_fields__)
        if source.observed_at is not None
    ]
    return max(times, default=None)


def _online_text(person: PersonSummary) -> str | None:
    if person.online is None:
        return None
    if not person.online:
        return "offline"
    return f"online · {person.current_show}" if person.current_show else "online"


def person_rows(
    persons: list[PersonSummary],
    provenance: dict[int, PersonSources],
    extra: dict[int, dict[str, Any]] | None = None,
) -> list[PersonRow]:
    """The rows of a person table; ``extra`` adds per-person values a page shows beside them."""
    looks: dict[tuple[str | None, dt.datetime | None, bool | None], tuple[str, str]] = {}

    def look(source: FieldSource | None) -> tuple[str, str]:
        if source is None:
            return "", "no source"
        key = (source.source, source.observed_at, source.stale)
        found = looks.get(key)
        if found is None:
            found = looks[key] = (source_class(source), source_title(source))
        return found

    rows = []
    for person in persons:
        sources = provenance.get(person.person_id)
        cells = []
        for field, numeric in COLUMNS:
            source = getattr(sources, field) if sources else None
            value = _online_text(person) if field == "online" else getattr(person, field)
            css, title = look(source)
            text = None if value is None else str(value)
            cells.append(
                Cell(field, text, numeric, css, title, source.source or "" if source else "")
            )
        tag_source = sources.tags if sources else None
        css, title = look(tag_source)
        tags = Cell("tags", None, False, css, title, tag_source.source or "" if tag_source else "")
        rows.append(
            PersonRow(
                person,
                tuple(cells),
                tags,
                newest_observation(sources),
                (extra or {}).get(person.person_id, {}),
            )
        )
    return rows
