"""Saved followers pages: when the pages given prove the whole list, and when they do not."""

from __future__ import annotations

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


def test_without_a_count_a_full_last_page_proves_nothing(tmp_path: Path) -> None:
    # No count shown: one page of 50 may be the first of several. Concluding it complete would
    # mark everyone past it lost (ten of sixty passes the mass-change guard).
    config = load_config({"ROOMWATCH_DATA_DIR": str(tmp_path)})
    full = [f"fan_{n:02d}" for n in range(50)]
    single = plan_import("followers", [_page(full, page=1, last=1)], config)
    assert not single.complete
    assert "cannot tell the list ended" in single.reason
    two_full = [
        _page(full, page=1, last=2),
        _page([f"x{n:02d}" for n in range(50)], page=2, last=2),
    ]
    assert not plan_import("followers", two_full, config).complete
    short_last = [_page(full, page=1, last=2), _page(["late_fan"], page=2, last=2)]
    plan = plan_import("followers", short_last, config)
    assert plan.complete, plan.reason
    assert len(plan.observations) == 51
