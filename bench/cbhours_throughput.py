"""Benchmarks CBHours live refreshes against the API's limit of one request per second.

One run starts a throw-away embedded PostgreSQL and the upstream simulator with 1,000 trophy
persons (half of them online) and its real limiter (1 request/s, HTTP 429 past it), then runs
``roomwatch crawl cbhours_live`` the real way (a crawl process through the crawl runner, with the
agent-wide pace at its configured default) several times. Per refresh it reports, from the
simulator's request log:

* **persons/s at the limit**: persons answered per second between the first and the last
  request's arrival, counting the last request's persons out (N requests span N-1 intervals);
  the limit allows at most 50 (50 names per request, one request per second);
* **% of the limit**: that over 50 (goal: at least 95%);
* **429s**: refusals by the simulator's limiter (goal: zero);
* **end to end**: persons over the whole job, crawl process start-up and storage included.

Usage: ``.venv/bin/python bench/cbhours_throughput.py [--persons 1000] [--refreshes 2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from agent.runner import CrawlRunner
from roomwatch.config import load_config
from spiders.cbhours_live import BATCH_SIZE
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations
from upstream_sim.cbhours.data import CbhoursState
from upstream_sim.cbhours.routes import CBHOURS_PATH
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

LIMIT_PER_SECOND = 1.0


def _url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return f"postgresql://{params['user']}@/{params['dbname']}?host={params['host']}"


def seed(conninfo: str, names: list[str]) -> None:
    """Persons of interest, all known to have a trophy."""
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO persons (username, following, has_cbhours_trophy) VALUES (%s, true, true)",
            [[name] for name in names],
        )


def refresh(runner: CrawlRunner, sim: SimulatorServer, persons: int) -> dict[str, float]:
    """One live refresh through a real crawl process; its figures."""
    sim.state.requests.clear()
    started = time.perf_counter()
    job = runner.run(runner.submit("cbhours_live", {}, "cli").job_id)
    wall = time.perf_counter() - started
    if job.status != "succeeded":
        raise SystemExit(f"crawl failed: {job.error_message}")
    records = sim.state.requests.entries(CBHOURS_PATH)
    answered = [r for r in records if r.status == 200]
    span = answered[-1].t - answered[0].t
    last_batch = persons - BATCH_SIZE * (len(answered) - 1)
    at_limit = (persons - last_batch) / span if span > 0 else float("nan")
    return {
        "requests": len(records),
        "refused": sum(1 for r in records if r.status == 429),
        "span_s": span,
        "per_s": at_limit,
        "share": at_limit / (BATCH_SIZE * LIMIT_PER_SECOND),
        "stored": job.items.get("cbhours_live", 0),
        "wall_s": wall,
        "end_to_end_per_s": persons / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--refreshes", type=int, default=2)
    args = parser.parse_args()
    names = [f"trophy{i:05d}" for i in range(args.persons)]
    cbhours = CbhoursState(seed=5, trophy=names)  # its limiter: 1 request/s, 429 past it
    for name in names[::2]:
        cbhours.set_live(name, cbhours.random_online(name))
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    try:
        conninfo = server.start()
        with psycopg.connect(conninfo) as conn:
            apply_migrations(conn)
        seed(conninfo, names)
        with SimulatorServer(SimulatorState(cbhours=cbhours)) as sim:
            os.environ.update(
                {
                    "ROOMWATCH_DATA_DIR": str(data_dir / "agent"),
                    "ROOMWATCH_DATABASE_URL": _url(conninfo),
                    "ROOMWATCH_CBHOURS_URL": sim.cbhours_url,
                    "ROOMWATCH_LOG_LEVEL": "WARNING",
                }
            )
            config = load_config()
            runner = CrawlRunner(config, conninfo)
            results = [refresh(runner, sim, args.persons) for _ in range(args.refreshes)]
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    interval = config.cbhours.min_interval_seconds
    print(f"\nCBHours live refresh, {args.persons} trophy persons, pace {interval} s/request")
    print(
        f"{'run':>3} {'requests':>8} {'429s':>4} {'span s':>7} {'persons/s':>9} "
        f"{'% of limit':>10} {'stored':>6} {'job s':>6} {'end-to-end/s':>12}"
    )
    for i, r in enumerate(results, start=1):
        print(
            f"{i:>3} {r['requests']:>8.0f} {r['refused']:>4.0f} {r['span_s']:>7.2f} "
            f"{r['per_s']:>9.2f} {r['share']:>10.1%} {r['stored']:>6.0f} {r['wall_s']:>6.2f} "
            f"{r['end_to_end_per_s']:>12.2f}"
        )
    worst = min(r["share"] for r in results)
    refused = sum(r["refused"] for r in results)
    if worst < 0.95:
        print(f"GOAL MISSED: {worst:.1%} of the limit's throughput (goal >= 95%)")
    if refused:
        print(f"GOAL MISSED: {refused:.0f} requests refused with 429 (goal: none)")


if __name__ == "__main__":
    main()
