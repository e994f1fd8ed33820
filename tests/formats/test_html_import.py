"""Saved followers pages: when the pages given prove the whole list, and when they do not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from formats.html_import import plan_import
from roomwatch.config import load_config


def _page(names: list[str], *, page: int, last: int) -> tuple[str, bytes]:
    cards = "".join(
        f"<li class='follower'><a class='username' href='/{n}/'>{n}</a></li>" for n in names
    )
    paging = "".join(f"<a href='?page={n}'>{n}</a>" for n in range(1, last + 1) if n != page)
    html = (
        "<html><body><div id='user_information'><a class='username' href='/p/owner/'>owner</a>"
        f"</div><div id='main'><ul class='followers_list'>{cards}</ul>"
        f"<ul class='paging'><li class='active'>{page}</li>{paging}</ul></div></body></html>"
    )
    return (f"page{page}.html", html.encode())


def test_without_a_count_only_the_stats_api_count_can_complete_the_pages(tmp_path: Path) -> None:
    # No count shown: one page of 50 may be the first of several, and a short last page may be
    # one cut short. Whatever the paging, the pages wait for the Stats API's count.
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path)})
    full = [f"fan_{n:02d}" for n in range(50)]
    single = plan_import("followers", [_page(full, page=1, last=1)], config)
    short_last = [_page(full, page=1, last=2), _page(["late_fan"], page=2, last=2)]
    for plan in (single, plan_import("followers", short_last, config)):
        assert not plan.complete
        assert plan.by_stats and plan.concludes
        assert plan.account == "owner"  # the header's name: whose Stats API count it needs
        assert "complete if the Stats API's follower count matches" in plan.reason
    saved = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    check = single.count_check(config, saved)
    assert check is not None
    assert (check.account, check.tolerance, check.max_age_minutes, check.at) == (
        "owner",
        0,
        10,
        saved,
    )
    confirmed = single.confirmed()
    assert (confirmed.complete, confirmed.reason) == (
        True,
        "complete: 50 followers, as the Stats API counts",
    )
    unconfirmed = single.unconfirmed("no count")
    assert not unconfirmed.concludes
    assert unconfirmed.reason == "partial: no count; follow state unchanged"

    missing_page = plan_import("followers", [_page(full, page=1, last=2)], config)
    assert not missing_page.concludes  # a page not given: no count can make up for it
    assert missing_page.count_check(config, saved) is None
