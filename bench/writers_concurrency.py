"""Benchmarks 1, 2 and 4 writers storing Affiliate polls at once into one PostgreSQL.

The Scrapyd layout (docs/scaling.md) runs crawls on several nodes that all write into one
database. One run starts a throw-away embedded PostgreSQL and, for each concurrency N in
``--writers`` (1, 2, 4 by default), runs N writer processes at once, each storing ``--polls``
polls of ``--rooms`` rooms through ``write_affiliate_poll`` on its own connection, and then N
processes each copying the same rows with a plain ``COPY`` into a twin of
``affiliate_api_snapshots`` (same columns and indexes): the baseline at the same concurrency,
measured in the same run. It prints rows/s for both and the ratio.

Persons, by ``--persons``:

* ``overlapping`` (the default, what N nodes polling the one Affiliate feed do): every writer
  stores the same rooms, each at its own observation time (a few seconds apart, as polls of
  different nodes are), so writers of one person wait for each other's row locks;
* ``distinct``: writer k stores rooms of its own feed (different persons), the share-nothing
  case that shows what the database itself can take.

Between polls each feed drifts as the simulator's does (viewers, followers; 2 % of the rooms
replaced), so every poll changes what a real poll changes. Before timing, every feed is written
twice, so the persons exist and the timed polls update as the steady state does.

Usage: ``.venv/bin/python bench/writers_concurrency.py [--rooms 10000] [--polls 3]
[--persons overlapping|distinct] [--writers 1 2 4]``. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path

import psycopg
from psycopg import sql

from formats.affiliate import decode_page
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from storage.records import AffiliateRoom
from storage.writers import SNAPSHOT_COLUMNS, snapshot_row, write_affiliate_poll
from upstream_sim.affiliate.feed import AffiliateFeed, FeedQuery

Polls = list[list[AffiliateRoom]]


def feed_polls(seed: int, rooms: int, polls: int) -> Polls:
    """``polls`` successive states of one feed of ``rooms`` rooms, decoded as the spider does."""
    feed = AffiliateFeed(rooms, seed=seed)
    states = []
    for _ in range(polls):
        states.append(decode_page(feed.page(FeedQuery(wm="bench", limit=rooms)))[0])
        feed.tick(seconds=60)
    return states


def _write(conninfo: str, polls: Polls, times: list[dt.datetime], barrier: Barrier) -> None:
    with psycopg.connect(conninfo) as conn:
        barrier.wait()
        for rooms, at in zip(polls, times, strict=True):
            write_affiliate_poll(conn, rooms, observed_at=at, complete=False)
            conn.commit()


def _copy(conninfo: str, polls: Polls, times: list[dt.datetime], barrier: Barrier) -> None:
    statement = sql.SQL("COPY raw_copy_target ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, SNAPSHOT_COLUMNS))
    )
    with psycopg.connect(conninfo) as conn:
        ids = dict(conn.execute("SELECT username, person_id FROM persons").fetchall())
        barrier.wait()
        for rooms, at in zip(polls, times, strict=True):
            with conn.transaction(), conn.cursor().copy(statement) as copy:
                # A room new in this poll has no person yet (its writer creates it): any id.
                for n, room in enumerate(rooms, start=1):
                    copy.write_row(snapshot_row(ids.get(room.username, -n), at, None, room))


def _timed(
    target: Callable[[str, Polls, list[dt.datetime], Barrier], None],
    conninfo: str,
    work: list[tuple[Polls, list[dt.datetime]]],
) -> float:
    """Seconds from the moment every process is ready until the last one is done."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(work) + 1)
    processes = [
        context.Process(target=target, args=(conninfo, polls, times, barrier))
        for polls, times in work
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise SystemExit(f"a process failed (exit codes {failed})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=3, help="timed polls per writer")
    parser.add_argument("--persons", choices=("overlapping", "distinct"), default="overlapping")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    most = max(args.writers)
    feeds = 1 if args.persons == "overlapping" else most
    # Two polls to warm up, then the timed ones of every concurrency, each on a newer state.
    states = [
        feed_polls(seed, args.rooms, 2 + args.polls * len(args.writers))
        for seed in range(3, 3 + feeds)
    ]
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    results: list[tuple[int, float, float]] = []
    try:
        conninfo = server.start()
        timed = args.polls * len(args.writers)
        # Polls 3 minutes apart, the newest about now (the merge's "recent" rules apply).
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3 * (timed + 2))
        with psycopg.connect(conninfo) as conn:
            apply_migrations(conn)
            for polls in states:
                for i, rooms in enumerate(polls[:2]):
                    write_affiliate_poll(
                        conn, rooms, observed_at=start + dt.timedelta(minutes=3 * i)
                    )
                    conn.commit()
            conn.execute(
                "CREATE TABLE raw_copy_target (LIKE affiliate_api_snapshots INCLUDING ALL)"
            )
            conn.commit()
        for round_, writers in enumerate(args.writers):
            first = 2 + round_ * args.polls
            work = []
            for k in range(writers):
                polls = states[k % feeds][first : first + args.polls]
                # The nodes' polls of one round a second apart.
                times = [
                    start + dt.timedelta(minutes=3 * (first + i), seconds=k)
                    for i in range(args.polls)
                ]
                work.append((polls, times))
            copy_s = _timed(_copy, conninfo, work)
            writer_s = _timed(_write, conninfo, work)
            results.append((writers, writer_s, copy_s))
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(
        f"\n{args.rooms}-room Affiliate polls, {args.polls} per writer, "
        f"{args.persons} persons ({feeds} feed{'s' if feeds > 1 else ''})"
    )
    print(f"{'writers':>7} {'writer rows/s':>13} {'raw COPY rows/s':>15} {'ratio':>6}")
    for writers, writer_s, copy_s in results:
        rows = writers * args.polls * args.rooms
        print(
            f"{writers:>7} {rows / writer_s:>13,.0f} {rows / copy_s:>15,.0f} "
            f"{copy_s / writer_s:>6.2f}"
        )


if __name__ == "__main__":
    main()
