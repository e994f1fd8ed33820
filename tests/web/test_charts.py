"""web/charts.py: the SVG it draws, read back with an XML parser (no browser needed)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import NamedTuple

from web.charts import heatmap, time_chart

SVG = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


class Point(NamedTuple):
    at: dt.datetime
    value: int
    source: str


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 (our own output, not untrusted input)


def circles(svg: ET.Element) -> list[ET.Element]:
    return list(svg.iter(f"{SVG}circle"))


def test_one_circle_per_point_grouped_and_coloured_by_source() -> None:
    points = [
        Point(T0 + dt.timedelta(minutes=m), v, s)
        for m, v, s in [
            (0, 100, "affiliate"),
            (5, 130, "cbhours"),
            (10, 110, "affiliate"),
            (15, 131, "cbhours"),
            (20, 120, "affiliate"),
        ]
    ]
    svg = parse(time_chart(points, start=T0, end=T0 + dt.timedelta(hours=1), label="Followers"))
    assert svg.get("data-points") == "5"
    assert len(circles(svg)) == 5
    groups = {g.get("data-source"): g for g in svg.iter(f"{SVG}g")}
    assert set(groups) == {"affiliate", "cbhours"}
    assert groups["affiliate"].get("class") == "series src-affiliate"
    assert len(circles(groups["affiliate"])) == 3
    titles = [c.findtext(f"{SVG}title") for c in circles(groups["cbhours"])]
    assert titles == ["CBHours, 2026-01-05 12:05 UTC: 130", "CBHours, 2026-01-05 12:15 UTC: 131"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"100", "131", "2026-01-05 12:00 UTC", "2026-01-05 13:00 UTC"} <= set(texts)
    assert "style" not in str(time_chart(points, start=T0, end=T0, label="x"))


def test_invert_puts_the_best_rank_on_top() -> None:
    points = [Point(T0, 5, "cbhours"), Point(T0 + dt.timedelta(hours=1), 50, "cbhours")]
    svg = parse(
        time_chart(points, start=T0, end=T0 + dt.timedelta(hours=2), label="Rank", invert=True)
    )
    best, worst = circles(svg)
    assert float(best.get("cy", "0")) < float(worst.get("cy", "0"))
    plain = parse(time_chart(points, start=T0, end=T0 + dt.timedelta(hours=2), label="Rank"))
    low, high = circles(plain)
    assert float(low.get("cy", "0")) > float(high.get("cy", "0"))


def test_lines_break_at_gaps_but_every_point_stays() -> None:
    hours = [0, 1, 2, 10, 11]
    points = [Point(T0 + dt.timedelta(hours=h), h, "affiliate") for h in hours]
    svg = parse(
        time_chart(
            points,
            start=T0,
            end=T0 + dt.timedelta(hours=12),
            label="x",
            max_gap=dt.timedelta(hours=2),
        )
    )
    assert len(list(svg.iter(f"{SVG}polyline"))) == 2
    assert len(circles(svg)) == 5


def test_every_text_is_escaped() -> None:
    label = "<script>alert(1)</script>"
    points = [Point(T0, 1, "<img src=x>"), Point(T0, 2, "affiliate")]
    markup = str(
        time_chart(
            points,
            start=T0,
            end=T0 + dt.timedelta(hours=1),
            label=label,
            attrs={"data-x": '"><script>'},
        )
    )
    assert "<script>" not in markup
    assert "<img" not in markup
    svg = parse(markup)  # still well-formed
    assert svg.get("aria-label") == label
    assert svg.findtext(f"{SVG}title") == label
    assert svg.get("data-x") == '"><script>'
    unknown = next(g for g in svg.iter(f"{SVG}g") if g.get("data-source") == "<img src=x>")
    assert unknown.get("class") == "series src-other"


def test_an_empty_chart_says_so() -> None:
    svg = parse(time_chart([], start=T0, end=T0 + dt.timedelta(days=7), label="Rank"))
    assert svg.get("data-points") == "0"
    assert circles(svg) == []
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["No points in this range"]


def test_heatmap_cells_and_shades() -> None:
    days = [dt.date(2026, 1, 4), dt.date(2026, 1, 5)]
    svg = parse(
        heatmap(days, {(days[1], 13): 27, (days[0], 0): 60}, label="Online", totals={days[1]: 33})
    )
    cells = list(svg.iter(f"{SVG}rect"))
    assert len(cells) == 48
    cell = next(c for c in cells if (c.get("data-day"), c.get("data-hour")) == ("2026-01-05", "13"))
    assert cell.get("data-minutes") == "27"
    assert cell.findtext(f"{SVG}title") == "2026-01-05 13:00 UTC: 27 min online"
    full = next(c for c in cells if (c.get("data-day"), c.get("data-hour")) == ("2026-01-04", "0"))
    assert float(full.get("fill-opacity", "0")) == 1.0
    assert float(cell.get("fill-opacity", "0")) < 1.0
    assert sum(1 for c in cells if "none" in (c.get("class") or "")) == 46
    assert "33 min" in [t.text for t in svg.iter(f"{SVG}text")]


def test_an_empty_heatmap_says_so() -> None:
    svg = parse(heatmap([dt.date(2026, 1, 5)], {}, label="Online"))
    assert list(svg.iter(f"{SVG}rect")) == []
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["No online time in this range"]
