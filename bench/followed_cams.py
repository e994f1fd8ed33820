"""Benchmarks the followed_cams crawl end to end: an account following 1,500 rooms.

One run starts a throw-away embedded PostgreSQL and the simulated site with an account that
follows 100 online and 1,400 offline rooms (the site's 90 per page: 2 + 16 pages, each a JS page
whose room list is fetched and rendered in the browser, thumbnails included), stores a session
for it, then runs ``roomwatch crawl followed_cams`` the real way (a crawl process through the
crawl runner, real headless Chromium), alternating resource blocking on and off
(``browser.block_resources``). Per crawl it prints:

* end to end: from submitting the job to its recorded end (process start, Chromium, every page,
  storage, follow-state reconciliation);
* peak PSS of the browser process tree (Playwright's driver, Chromium and all its children:
  everything that runs because of the browser) and of the whole crawl tree (that plus the
  Python crawl process), sampled every 0.2 s with psutil (``memory_full_info().pss``), and of
  Chromium's processes alone;
* images the browser fetched (the simulator's log) and requests it aborted.

Usage: ``.venv/bin/python bench/followed_cams.py [--online 100] [--offline 1400] [--runs 2]``.
Goals (with blocking): under 10 s end to end, browser tree under 700 MB PSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

from agent.runner import CrawlRunner
from roomwatch.config import load_config
from sessions.store import save_session
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

ACCOUNT = "benchuser"


def _url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return f"postgresql://{params['user']}@/{params['dbname']}?host={params['host']}"


class TreeSampler(threading.Thread):
    """Samples the PSS of the crawl process tree of this process until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()
        self.peak_chromium = 0
        self.peak_browser = 0
        self.peak_tree = 0

    def run(self) -> None:
        me = psutil.Process()
        while not self.stopped.wait(0.2):
            chromium = browser = tree = 0
            for crawl in me.children():
                try:
                    if "crawler.crawl" not in " ".join(crawl.cmdline()):
                        continue
                    for process in [crawl, *crawl.children(recursive=True)]:
                        pss = process.memory_full_info().pss
                        tree += pss
                        if process.pid != crawl.pid:  # the driver and Chromium
                            browser += pss
                        if "chrom" in process.name():
                            chromium += pss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            self.peak_chromium = max(self.peak_chromium, chromium)
            self.peak_browser = max(self.peak_browser, browser)
            self.peak_tree = max(self.peak_tree, tree)


def crawl_once(conninfo: str, sim: SimulatorServer, block: bool) -> dict[str, Any]:
    """One followed_cams crawl through the runner; its figures."""
    os.environ["ROOMWATCH_BROWSER_BLOCK_RESOURCES"] = "true" if block else "false"
    config = load_config()
    runner = CrawlRunner(config, conninfo)
    sim.state.requests.clear()
    sampler = TreeSampler()
    sampler.start()
    started = time.perf_counter()
    job = runner.run(runner.submit("followed_cams", {}, "cli").job_id)
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    if job.status != "succeeded":
        raise SystemExit(f"crawl failed: {job.error_message}")
    return {
        "block": block,
        "wall_s": wall,
        "crawl_s": float(job.stats["elapsed_time_seconds"]),
        "rooms": job.items.get("followed_rooms", 0),
        "pages": int(job.stats.get("roomwatch/pages", 0)),
        "chromium_mb": sampler.peak_chromium / 2**20,
        "browser_mb": sampler.peak_browser / 2**20,
        "tree_mb": sampler.peak_tree / 2**20,
        "images": sim.state.requests.count("/riw/"),
        "aborted": int(job.stats.get("playwright/request_count/aborted", 0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online", type=int, default=100)
    parser.add_argument("--offline", type=int, default=1400)
    parser.add_argument("--runs", type=int, default=2, help="crawls per setting (alternated)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    results: list[dict[str, Any]] = []
    try:
        conninfo = server.start()
        with psycopg.connect(conninfo) as conn:
            apply_migrations(conn)
        with SimulatorServer(SimulatorState()) as sim:
            os.environ.update(
                {
                    "ROOMWATCH_DATA_DIR": str(data_dir / "agent"),
                    "ROOMWATCH_DATABASE_URL": _url(conninfo),
                    "ROOMWATCH_CHATURBATE_URL": sim.base_url,
                    "ROOMWATCH_LOG_LEVEL": "WARNING",
                }
            )
            total = args.online + args.offline
            sim.state.site.add_account(
                ACCOUNT, "pw", followed_online=args.online, followed_total=total
            )
            sessionid = sim.state.site.open_session(ACCOUNT)
            cookie = {"name": "sessionid", "value": sessionid, "domain": "127.0.0.1", "path": "/"}
            with psycopg.connect(conninfo) as conn:
                save_session(
                    conn,
                    load_config(),
                    {"cookies": [cookie], "origins": []},  # type: ignore[list-item]
                    account=ACCOUNT,
                    method="import",
                )
            for _ in range(args.runs):
                for block in (True, False):
                    results.append(crawl_once(conninfo, sim, block))
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"\nfollowed_cams, {args.online} online + {args.offline} offline followed rooms")
    print(
        f"{'blocking':>8} {'end-to-end s':>12} {'crawl s':>8} {'pages':>5} {'rooms':>5} "
        f"{'Chromium MB':>11} {'browser MB':>10} {'crawl tree MB':>13} {'images':>6} "
        f"{'aborted':>7}"
    )
    for r in results:
        print(
            f"{'on' if r['block'] else 'off':>8} {r['wall_s']:>12.2f} {r['crawl_s']:>8.2f} "
            f"{r['pages']:>5} {r['rooms']:>5} {r['chromium_mb']:>11.0f} {r['browser_mb']:>10.0f} "
            f"{r['tree_mb']:>13.0f} "
            f"{r['images']:>6} {r['aborted']:>7}"
        )
    for block in (True, False):
        runs = [r for r in results if r["block"] is block]
        wall = statistics.median(r["wall_s"] for r in runs)
        peak = max(r["browser_mb"] for r in runs)
        print(
            f"blocking {'on ' if block else 'off'}: median {wall:.2f} s end to end, "
            f"peak browser tree PSS {peak:.0f} MB (driver + Chromium)"
        )
    blocked = [r for r in results if r["block"]]
    wall = statistics.median(r["wall_s"] for r in blocked)
    peak = max(r["browser_mb"] for r in blocked)
    if wall >= 10:
        print(f"GOAL MISSED: {wall:.2f} s end to end (goal < 10 s)")
    if peak >= 700:
        print(
            f"GOAL MISSED: the browser tree (driver + Chromium) peaked at {peak:.0f} MB PSS "
            "(goal < 700 MB)"
        )


if __name__ == "__main__":
    main()
