"""A/B of the Affiliate poll writer: two schemas in one server, interleaved, against a raw COPY.

One throw-away embedded PostgreSQL holds two databases: ``a`` migrated up to ``--a-upto``
(by default the migration before the newest: what main had) and ``b`` migrated with every
bundled migration. Each gets the same persons: ``--old`` rooms of another feed seen hours ago,
then two warm-up polls of a ``--rooms``-room feed, then ``VACUUM ANALYZE``. Then, ``--rounds``
times, the next state of the feed (it drifts as the simulator's does) is written by
``write_affiliate_poll`` into each database, and the same snapshot rows by a plain ``COPY`` into
a twin of ``affiliate_api_snapshots`` (``raw_copy_target``, same columns and indexes), in an
order alternated round by round. It prints, per arm, the median writer time, the median COPY
time and the median of the per-round ratios (COPY time / writer time: the writer's speed as a
share of the COPY's), the deferred refresh's median, and how many of ``person_summary``'s
updates were HOT.

Usage: ``.venv/bin/python -m bench.affiliate_writer_ab [--rooms 10000] [--old 30000]
[--rounds 8] [--a-upto 22]``. Figures: docs/benchmarks.md ("Round 3" to "Round 5").
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

import storage.writers as writers
from bench.writers_concurrency import feed_polls
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations, bundled_migrations
from storage.records import AffiliateRoom
from storage.writers import SNAPSHOT_COLUMNS, snapshot_row, write_affiliate_poll

_REFRESH: list[float] = []
_EXPLAIN: list[str] = []  # the arm whose next refresh is explained
_original_deferred = writers.deferred_summaries


@contextmanager
def _timed_deferred(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """``deferred_summaries`` with its final refresh timed."""
    conn.execute("SELECT roomwatch_defer_summaries()")
    yield
    if _EXPLAIN:
        _explain_refresh(conn)
    started = time.perf_counter()
    conn.execute("SELECT roomwatch_apply_deferred_summaries()")
    _REFRESH.append(time.perf_counter() - started)


def _explain_refresh(conn: psycopg.Connection[Any]) -> None:
    """Runs the statements of the refresh function under EXPLAIN ANALYZE and prints the plans
    (the refresh after them then finds little left to do; its time is not the round's)."""
    body = conn.execute(
        "SELECT prosrc FROM pg_proc WHERE proname = 'roomwatch_refresh_summaries'"
    ).fetchone()
    assert body is not None
    ids = [
        int(row[0])
        for row in conn.execute(
            "SELECT DISTINCT person_id FROM pg_temp.roomwatch_deferred_summaries"
        )
    ]
    statements = [
        part.strip()
        for part in str(body[0]).split("BEGIN", 1)[1].rsplit("END", 1)[0].split(";")
        if part.strip()
    ]
    for statement in statements:
        text = (
            "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))
            .replace("PERFORM", "SELECT")
            .replace("(ids)", "(%(ids)s::bigint[])")
        )
        text = text.replace("= ids", "= %(ids)s::bigint[]")
        print(f"-- {_EXPLAIN[0]}: {text[:160]}")
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, {"ids": ids}).fetchall()
        print("\n".join(str(row[0]) for row in plan), flush=True)


def _copy(conn: psycopg.Connection[Any], rooms: list[AffiliateRoom], at: dt.datetime) -> float:
    statement = sql.SQL("COPY raw_copy_target ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, SNAPSHOT_COLUMNS))
    )
    ids = dict(conn.execute("SELECT username, person_id FROM persons").fetchall())
    conn.commit()
    started = time.perf_counter()
    with conn.transaction(), conn.cursor().copy(statement) as copy:
        for n, room in enumerate(rooms, start=1):
            copy.write_row(snapshot_row(ids.get(room.username, -n), at, None, room))
    return time.perf_counter() - started


def _write(conn: psycopg.Connection[Any], rooms: list[AffiliateRoom], at: dt.datetime) -> float:
    started = time.perf_counter()
    write_affiliate_poll(conn, rooms, observed_at=at, complete=True)
    conn.commit()
    return time.perf_counter() - started


_STATEMENTS: dict[str, list[float]] = {}


def _time_statements(conn: psycopg.Connection[Any]) -> None:
    """Times each ``conn.execute`` (by its first words) into ``_STATEMENTS``."""
    execute = conn.execute

    def timed(query: Any, params: Any = None, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(conn)
        name = " ".join(text.split()[:4])[:60]
        started = time.perf_counter()
        try:
            return execute(query, params, **kwargs)
        finally:
            _STATEMENTS.setdefault(name, []).append(time.perf_counter() - started)

    conn.execute = timed  # type: ignore[method-assign]


def _hot(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'person_summary'"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--old", type=int, default=30_000, help="persons seen hours ago")
    parser.add_argument("--rounds", type=int, default=8)
    newest = max(m.version for m in bundled_migrations())
    parser.add_argument("--a-upto", type=int, default=newest - 1)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="log the last round's statements with EXPLAIN ANALYZE (auto_explain), print them",
    )
    parser.add_argument(
        "--statements", action="store_true", help="print the writer's statements' median times"
    )
    args = parser.parse_args()
    writers.deferred_summaries = _timed_deferred  # type: ignore[assignment]

    states = feed_polls(3, args.rooms, 2 + args.rounds)
    old = feed_polls(1003, args.old, 1)[0]
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    arms = {"a": f"migrations <= {args.a_upto}", "b": f"migrations <= {newest}"}
    conns: dict[str, psycopg.Connection[Any]] = {}
    try:
        conninfo = server.start()
        with psycopg.connect(conninfo, autocommit=True) as admin:
            for arm in arms:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(arm)))
        now = dt.datetime.now(dt.UTC)
        start = now - dt.timedelta(minutes=3 * (args.rounds + 2))
        for arm in arms:
            conn = psycopg.connect(psycopg.conninfo.make_conninfo(conninfo, dbname=arm))
            upto = args.a_upto if arm == "a" else newest
            apply_migrations(conn, [m for m in bundled_migrations() if m.version <= upto])
            write_affiliate_poll(conn, old, observed_at=now - dt.timedelta(hours=5), complete=True)
            conn.commit()
            for i, rooms in enumerate(states[:2]):
                at = start + dt.timedelta(minutes=3 * i)
                write_affiliate_poll(conn, rooms, observed_at=at, complete=True)
                conn.commit()
            conn.execute(
                "CREATE TABLE raw_copy_target (LIKE affiliate_api_snapshots INCLUDING ALL)"
            )
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
            conn.autocommit = False
            conns[arm] = conn
            if args.statements:
                _time_statements(conn)
        load_before = os.getloadavg()
        results: dict[str, dict[str, list[float]]] = {
            arm: {"writer": [], "copy": [], "ratio": [], "refresh": []} for arm in arms
        }
        hot: dict[str, list[int]] = {arm: [0, 0] for arm in arms}
        per_statement: dict[tuple[str, str], list[float]] = {}
        for r in range(args.rounds):
            at = start + dt.timedelta(minutes=3 * (r + 2))
            rooms = states[r + 2]
            order = list(arms) if r % 2 == 0 else list(reversed(arms))
            for arm in order:
                conn = conns[arm]
                before = _hot(conn)
                conn.commit()
                copy_s = _copy(conn, rooms, at)
                _REFRESH.clear()
                _STATEMENTS.clear()
                _EXPLAIN[:] = [arm] if args.explain and r == args.rounds - 1 else []
                writer_s = _write(conn, rooms, at)
                time.sleep(0.6)  # the statistics collector's flush
                after = _hot(conn)
                conn.commit()
                hot[arm][0] += after[0] - before[0]
                hot[arm][1] += after[1] - before[1]
                res = results[arm]
                res["writer"].append(writer_s)
                res["copy"].append(copy_s)
                res["ratio"].append(copy_s / writer_s)
                res["refresh"].append(sum(_REFRESH))
                for name, times in _STATEMENTS.items():
                    per_statement.setdefault((arm, name), []).append(sum(times))
                print(
                    f"round {r} {arm}: writer {writer_s * 1000:7.0f} ms, "
                    f"refresh {sum(_REFRESH) * 1000:6.0f} ms, copy {copy_s * 1000:6.0f} ms, "
                    f"ratio {copy_s / writer_s:.2f}",
                    flush=True,
                )
        load_after = os.getloadavg()
    finally:
        for conn in conns.values():
            conn.close()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    for (arm, name), times in sorted(per_statement.items()):
        print(f"{arm} {statistics.median(times) * 1000:7.0f} ms  {name}")
    print(
        f"\n{args.rooms}-room polls, {args.old} older persons, {args.rounds} rounds; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"{'arm':<22} {'writer ms':>9} {'refresh ms':>10} {'COPY ms':>8} {'ratio':>6} {'HOT':>12}"
    )
    for arm, label in arms.items():
        res = results[arm]
        upd, hot_upd = hot[arm]
        print(
            f"{label:<22} {statistics.median(res['writer']) * 1000:>9.0f} "
            f"{statistics.median(res['refresh']) * 1000:>10.0f} "
            f"{statistics.median(res['copy']) * 1000:>8.0f} "
            f"{statistics.median(res['ratio']):>6.2f} {hot_upd:>6}/{upd:<6}"
        )


if __name__ == "__main__":
    main()
