"""Benchmarks one Affiliate poll end to end: simulator -> spider -> pipelines -> PostgreSQL.

One run starts a throw-away embedded PostgreSQL and the upstream simulator with a 10,000-room
feed (20 pages of 500), then:

* runs ``roomwatch crawl affiliate`` the real way (a crawl process per poll, through the crawl
  runner) several times and reports, per poll, the crawl time (spider open to close, from the
  job's stats), the rooms per second, and the pipelines' share (time inside the storage writer
  over the crawl time; writes overlap with downloads, so shares can add up to more than 100%);
* measures, on the same 10,000 decoded rooms, the database write (``write_affiliate_poll``)
  against a raw ``COPY`` of the same snapshot rows into a table with the same indexes,
  alternating the two to be fair to a noisy machine.

Usage: ``.venv/bin/python bench/ingest_affiliate.py [--rooms 10000] [--polls 5]``. Goals:
a full poll stored in under 3 s; the write at least half as fast as raw COPY.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from agent.runner import CrawlRunner
from formats.affiliate import decode_page
from roomwatch.config import load_config
from spiders.affiliate import PAGE_SIZE
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from storage.records import AffiliateRoom
from storage.writers import SNAPSHOT_COLUMNS, ensure_partitions, snapshot_row, write_affiliate_poll
from upstream_sim.affiliate.feed import AffiliateFeed
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState


def _url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return f"postgresql://{params['user']}@/{params['dbname']}?host={params['host']}"


def crawl_polls(
    conninfo: str, sim: SimulatorServer, data_dir: Path, polls: int
) -> list[dict[str, float]]:
    """Runs real affiliate crawls; returns per-poll figures."""
    os.environ.update(
        {
            "ROOMWATCH_DATA_DIR": str(data_dir),
            "ROOMWATCH_DATABASE_URL": _url(conninfo),
            "ROOMWATCH_AFFILIATE_URL": sim.affiliate_url,
            "ROOMWATCH_AFFILIATE_WM": "bench",
            "ROOMWATCH_LOG_LEVEL": "WARNING",
        }
    )
    config = load_config()
    runner = CrawlRunner(config, conninfo)
    results = []
    for _ in range(polls):
        started = time.perf_counter()
        job = runner.run(runner.submit("affiliate", {}, "cli").job_id)
        wall = time.perf_counter() - started
        if job.status != "succeeded":
            raise SystemExit(f"crawl failed: {job.error_message}")
        crawl = float(job.stats["elapsed_time_seconds"])
        rooms = job.items["affiliate_rooms"]
        results.append(
            {
                "crawl_s": crawl,
                "process_s": wall,
                "rooms": rooms,
                "rooms_per_s": rooms / crawl,
                "store_share": float(job.stats.get("roomwatch/store_seconds", 0.0)) / crawl,
            }
        )
        sim.state.affiliate.tick(seconds=300, churn=0.0)
    return results


def fetch_rooms(sim: SimulatorServer, count: int) -> list[AffiliateRoom]:
    """The feed's rooms, decoded by the spider's own decoder."""
    rooms: list[AffiliateRoom] = []
    with httpx.Client() as client:
        for offset in range(0, count, PAGE_SIZE):
            response = client.get(
                sim.affiliate_url,
                params={
                    "wm": "bench",
                    "client_ip": "request_ip",
                    "limit": PAGE_SIZE,
                    "offset": offset,
                },
            )
            rooms += decode_page(response.content)[0]
    return rooms


def raw_copy(conn: psycopg.Connection[Any], rooms: list[AffiliateRoom], at: dt.datetime) -> float:
    """Seconds for a plain COPY of the same snapshot rows into an identically indexed table."""
    started = time.perf_counter()
    with (
        conn.transaction(),
        conn.cursor().copy(
            sql.SQL("COPY raw_copy_target ({}) FROM STDIN").format(
                sql.SQL(", ").join(map(sql.Identifier, SNAPSHOT_COLUMNS))
            )
        ) as copy,
    ):
        for person_id, room in enumerate(rooms, start=1):
            copy.write_row(snapshot_row(person_id, at, None, room))
    return time.perf_counter() - started


def writer_vs_copy(
    conn: psycopg.Connection[Any], rooms: list[AffiliateRoom], rounds: int
) -> tuple[float, float]:
    """Median seconds of the writer and of raw COPY for the same rows, alternated."""
    base = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    ensure_partitions(conn, "affiliate_api_snapshots", "day", base, base + dt.timedelta(days=1))
    conn.execute("CREATE TABLE raw_copy_target (LIKE affiliate_api_snapshots INCLUDING ALL)")
    conn.commit()
    writer, copy = [], []
    for i in range(rounds):
        at = base + dt.timedelta(minutes=5 * i)
        copy.append(raw_copy(conn, rooms, at))
        started = time.perf_counter()
        write_affiliate_poll(conn, rooms, observed_at=at + dt.timedelta(seconds=1))
        conn.commit()
        writer.append(time.perf_counter() - started)
    return statistics.median(writer), statistics.median(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    try:
        conninfo = server.start()
        with psycopg.connect(conninfo) as conn:
            apply_migrations(conn)
        with SimulatorServer(SimulatorState(affiliate=AffiliateFeed(args.rooms, seed=3))) as sim:
            polls = crawl_polls(conninfo, sim, data_dir / "agent", args.polls)
            rooms = fetch_rooms(sim, args.rooms)
        with psycopg.connect(conninfo) as conn:
            writer_s, copy_s = writer_vs_copy(conn, rooms, rounds=5)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"\nAffiliate ingest, {args.rooms} rooms per poll ({len(polls)} polls)")
    print(f"{'poll':>4} {'crawl s':>8} {'process s':>9} {'rooms/s':>8} {'store share':>11}")
    for i, p in enumerate(polls, start=1):
        print(
            f"{i:>4} {p['crawl_s']:>8.2f} {p['process_s']:>9.2f} {p['rooms_per_s']:>8.0f} "
            f"{p['store_share']:>10.0%}"
        )
    crawl = statistics.median(p["crawl_s"] for p in polls)
    print(f"median crawl {crawl:.2f} s ({args.rooms / crawl:.0f} rooms/s)")
    ratio = copy_s / writer_s
    print(
        f"database write {writer_s * 1000:.0f} ms vs raw COPY {copy_s * 1000:.0f} ms "
        f"for {len(rooms)} rows: writer at {ratio:.0%} of raw COPY speed"
    )
    if crawl >= 3.0:
        print(f"GOAL MISSED: a full poll took {crawl:.2f} s (goal < 3 s)")
    if ratio < 0.5:
        print(f"GOAL MISSED: the writer runs at {ratio:.0%} of raw COPY speed (goal >= 50%)")


if __name__ == "__main__":
    main()
