"""Times the HTML import's parser on generated pages of 20,000 cards (issue 9: 38 s, loop frozen).

Usage: ``.venv/bin/python bench/html_import.py [--cards N]``. Three pages, each read by
``formats.html_import.plan_import`` as the import route and the CLI do: the simulator's
followers markup, followers as generic cards (profile links, the count only in a heading), and
the old site's followed-cams cards (``li.room_list_room``, about 15 MB). Prints seconds per page.

Then it stores the first page's followers as the import route does (``record_observations``,
``reconcile``) into a throw-away embedded PostgreSQL, on a connection that has stored a list of
five first, as a running API's has (the triggers' plans of that first call were once kept and
made this 100 s at 20,000 persons, migration 0025). Prints the seconds of the big one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from formats.html_import import ImportPlan, Kind, plan_import
from roomwatch.config import Config
from storage.embedded import EmbeddedPostgres
from storage.follow_state import reconcile, record_observations
from storage.migrator import apply_migrations, bundled_migrations
from upstream_sim.site.follow_lists import FollowLists
from upstream_sim.site.list_pages import followers_page, legacy_list_page
from upstream_sim.site.state import Account


def _cards(names: list[str]) -> str:
    cards = "".join(
        f"<div class='card'><a href='/{name}/'><img src='/img/{index}.jpg' alt=''></a>"
        f"<div class='name'><a href='/{name}/'>{name}</a></div>"
        f"<span class='since'>2026-01-0{index % 9 + 1}</span></div>\n"
        for index, name in enumerate(names)
    )
    return (
        "<!DOCTYPE html><html><head><title>Followers</title></head><body><div id='header'>"
        "<div id='user_information'><a class='username' href='/p/owner/'>owner</a></div>"
        "<span class='followed_counts'>(1/2)</span></div><div id='main'>"
        f"<h1>Followers ({len(names)})</h1><div class='grid'>{cards}</div></div></body></html>"
    )


def main() -> None:
    """Generates the pages and times one import of each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=20_000)
    count = parser.parse_args().cards
    names = [f"fan_{index:05d}_x" for index in range(count)]
    owner = Account("owner", "pw", FollowLists((), (), names))
    rooms = FollowLists.generate(online=count, offline=0, followers=0, seed=1)
    pages: list[tuple[str, Kind, str]] = [
        (
            "followers, simulator markup",
            "followers",
            followers_page(owner, page=1, page_size=count, age_gate=False, broken=False),
        ),
        ("followers, generic cards", "followers", _cards(names)),
        (
            "following, old site's cards",
            "following",
            legacy_list_page(Account("owner", "pw", rooms), offline=False, page=1, page_size=count),
        ),
    ]
    plans = []
    for label, kind, html in pages:
        body = html.encode()
        started = time.perf_counter()
        plan = plan_import(kind, [("page", body)], Config())
        seconds = time.perf_counter() - started
        plans.append(plan)
        print(f"{label}: {len(body) / 1e6:.1f} MB, {seconds:.2f} s ({plan.reason})")
    few = [f"early_{index}" for index in range(5)]
    small = plan_import("followers", [("page", _cards(few).encode())], Config())
    print(f"stored, {count} followers: {_store(small, plans[0]):.2f} s")


def _store(first: ImportPlan, big: ImportPlan) -> float:
    """Stores ``first``, then times storing ``big``, as one API connection would."""
    config = Config()
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="roomwatch-bench-")) / "db")
    try:
        with psycopg.connect(server.start(), autocommit=True) as conn:
            apply_migrations(conn, bundled_migrations())
            _record(conn, first, config)
            started = time.perf_counter()
            _record(conn, big, config)
            return time.perf_counter() - started
    finally:
        server.stop()


def _record(conn: psycopg.Connection[Any], plan: ImportPlan, config: Config) -> None:
    """The import route's two writes of a complete followers list."""
    now = dt.datetime.now(dt.UTC)
    record_observations(conn, plan.observations, source="html_import", observed_at=now)
    reconcile(
        conn, plan.relation, plan.usernames, account="owner", checked_at=now,
        source="html_import", limits=config.follow, confirm_loss=True, count_check=None,
    )  # fmt: skip


if __name__ == "__main__":
    main()
