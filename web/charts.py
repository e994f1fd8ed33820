"""Charts drawn on the server as SVG: a time series coloured by source, and an hours heatmap.

Pure functions from data to markup, so the pages need no script and no third-party files.
Every text put into the SVG (labels, hover titles, attribute values) is escaped here, and the
result is returned as ``Markup`` for the templates. Colours are never written inline (the CSP
forbids ``style``): a point's group carries the class ``src-<source>`` and is drawn in
``currentColor``, so the stylesheet alone decides what a source looks like; shades use the
``fill-opacity`` presentation attribute.

Hover values are SVG ``<title>`` children: one ``<circle class="pt">`` per point, titled
``"<source>, <time>: <value>"``; one ``<rect class="cell">`` per heatmap hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from markupsafe import Markup

from web.sources import LABELS, format_time, name_class

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 26
POINT_RADIUS = 2.5
DAY_ROW, HOUR_COLUMN = 16, 22
HEAT_LEFT, HEAT_TOP, HEAT_RIGHT = 78, 16, 70


class ChartPoint(Protocol):
    """What a time chart draws: the shape of ``storage.person_series.HistoryPoint``."""

    @property
    def at(self) -> dt.datetime: ...
    @property
    def value(self) -> int: ...
    @property
    def source(self) -> str: ...


def _attrs(values: Mapping[str, object]) -> Markup:
    return Markup("").join(Markup(' {}="{}"').format(k, v) for k, v in values.items())


def _svg(width: int, height: int, label: str, attrs: Mapping[str, object], body: Markup) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{label}"{attrs}><title>{label}</title>{body}</svg>'
    ).format(w=width, h=height, label=label, attrs=_attrs(attrs), body=body)


def _text(x: float, y: float, content: str, anchor: str = "start", cls: str = "") -> Markup:
    return Markup('<text x="{x:.1f}" y="{y:.1f}" text-anchor="{a}"{c}>{t}</text>').format(
        x=x, y=y, a=anchor, c=_attrs({"class": cls}) if cls else Markup(""), t=content
    )


def empty_chart(label: str, message: str, attrs: Mapping[str, object] | None = None) -> Markup:
    """A chart frame that says why there is nothing to draw."""
    body = _text(WIDTH / 2, HEIGHT / 2, message, "middle", "empty")
    return _svg(WIDTH, HEIGHT, label, {"data-points": 0, **(attrs or {})}, body)


def time_chart(
    points: Sequence[ChartPoint],
    *,
    start: dt.datetime,
    end: dt.datetime,
    label: str,
    invert: bool = False,
    max_gap: dt.timedelta | None = None,
    attrs: Mapping[str, object] | None = None,
) -> Markup:
    """Points of one metric over ``[start, end)``, one line and one dot per point per source.

    Args:
        label: what the chart shows (its accessible name and title).
        invert: smallest values on top (ranks: 1 is best).
        max_gap: a source's line breaks where two of its points are further apart (offline
            stretches are not drawn as a straight line); None: never.
        attrs: extra attributes of the ``<svg>`` (``data-*`` for tests and scripts).
    """
    extra = {"data-points": len(points), **(attrs or {})}
    if not points:
        return empty_chart(label, "No points in this range", extra)
    span = max((end - start).total_seconds(), 1.0)
    low = min(p.value for p in points)
    high = max(p.value for p in points)
    bottom_value, top_value = (high, low) if invert else (low, high)
    scale_low, scale_high = (low - 1, high + 1) if low == high else (low, high)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(at: dt.datetime) -> float:
        return LEFT + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y_of(value: int) -> float:
        share = (value - scale_low) / (scale_high - scale_low)
        return TOP + plot_h * (share if invert else 1 - share)

    parts = [
        Markup(
            '<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="currentColor"/>'
            '<line class="axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="currentColor"/>'
        ).format(l=LEFT, r=WIDTH - RIGHT, t=TOP, b=TOP + plot_h),
        _text(LEFT - 6, TOP + 10, f"{top_value:,}", "end", "max" if not invert else "min"),
        _text(LEFT - 6, TOP + plot_h, f"{bottom_value:,}", "end", "min" if not invert else "max"),
        _text(LEFT, HEIGHT - 8, format_time(start), "start", "start"),
        _text(WIDTH - RIGHT, HEIGHT - 8, format_time(end), "end", "end"),
    ]
    by_source: dict[str, list[ChartPoint]] = {}
    for point in points:
        by_source.setdefault(point.source, []).append(point)
    for source, own in by_source.items():
        name = LABELS.get(source, source)
        lines: list[list[str]] = [[]]
        dots = []
        previous: dt.datetime | None = None
        for point in sorted(own, key=lambda p: p.at):
            if max_gap is not None and previous is not None and point.at - previous > max_gap:
                lines.append([])
            previous = point.at
            x, y = x_of(point.at), y_of(point.value)
            lines[-1].append(f"{x:.1f},{y:.1f}")
            dots.append(
                Markup(
                    '<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="currentColor">'
                    "<title>{name}, {at}: {value:,}</title></circle>"
                ).format(
                    x=x, y=y, r=POINT_RADIUS, name=name, at=format_time(point.at), value=point.value
                )
            )
        polylines = [
            Markup('<polyline points="{}" fill="none" stroke="currentColor"/>').format(" ".join(c))
            for c in lines
            if len(c) > 1
        ]
        parts.append(
            Markup('<g class="series {cls}" data-source="{source}">{lines}{dots}</g>').format(
                cls=name_class(source),
                source=source,
                lines=Markup("").join(polylines),
                dots=Markup("").join(dots),
            )
        )
    return _svg(WIDTH, HEIGHT, label, extra, Markup("").join(parts))


def heatmap(
    days: Sequence[dt.date],
    minutes: Mapping[tuple[dt.date, int], int],
    *,
    label: str,
    totals: Mapping[dt.date, int] | None = None,
    source: str = "cbhours",
) -> Markup:
    """Minutes online per UTC hour: one row per day of ``days``, one column per hour.

    Args:
        minutes: ``(day, hour) -> minutes`` (0-60); absent hours are drawn as none.
        totals: a day's total as the source counts it, written at the end of its row.
        source: whose colour the cells take.
    """
    if not any(minutes.get((day, hour), 0) for day in days for hour in range(24)):
        return empty_chart(label, "No online time in this range", {"data-cells": 0})
    width = HEAT_LEFT + 24 * HOUR_COLUMN + HEAT_RIGHT
    height = HEAT_TOP + DAY_ROW * len(days) + 4
    parts = [
        _text(HEAT_LEFT + (hour + 0.5) * HOUR_COLUMN, HEAT_TOP - 4, f"{hour:02d}", "middle")
        for hour in range(0, 24, 3)
    ]
    cells = []
    for row, day in enumerate(days):
        y = HEAT_TOP + row * DAY_ROW
        parts.append(_text(HEAT_LEFT - 6, y + DAY_ROW - 4, day.isoformat(), "end"))
        total = (totals or {}).get(day)
        if total is not None:
            parts.append(_text(width - HEAT_RIGHT + 6, y + DAY_ROW - 4, f"{total} min", "start"))
        for hour in range(24):
            value = max(0, min(60, minutes.get((day, hour), 0)))
            cells.append(
                Markup(
                    '<rect class="cell{none}" x="{x}" y="{y}" width="{w}" height="{h}" rx="2" '
                    'fill="currentColor" fill-opacity="{o:.2f}" data-day="{day}" data-hour="{hour}"'
                    ' data-minutes="{m}"><title>{day} {hour:02d}:00 UTC: {m} min online</title>'
                    "</rect>"
                ).format(
                    none="" if value else " none",
                    x=HEAT_LEFT + hour * HOUR_COLUMN + 1,
                    y=y + 1,
                    w=HOUR_COLUMN - 2,
                    h=DAY_ROW - 2,
                    o=0.08 + 0.92 * value / 60 if value else 0.06,
                    day=day.isoformat(),
                    hour=hour,
                    m=value,
                )
            )
    parts.append(
        Markup('<g class="cells {cls}">{cells}</g>').format(
            cls=name_class(source), cells=Markup("").join(cells)
        )
    )
    return _svg(width, height, label, {"data-cells": len(cells)}, Markup("").join(parts))
