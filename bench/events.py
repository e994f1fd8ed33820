"""Benchmarks the Events API stream: a burst through the ``room_events`` spider, and follows.

One run starts a throw-away embedded PostgreSQL and the upstream simulator with one site
account, then runs the ``room_events`` spider the real way (a crawl process through the crawl
runner, the storage pipeline, the writer). It reports:

* **burst**: N events appended to the simulator's stream at once (the busy-room mix, 100 per
  answer, the simulator's default), then the stream started; events/s stored, from the first
  Events API request's arrival to the moment every event is in ``room_events`` (seen by this
  process polling the stream's stored position every 5 ms), crawl process start-up excluded.
  Against it, **raw COPY**: the same rows (read back from the table) copied into
  ``room_events`` under another account, one COPY and a commit, timed the same way. The ratio
  is measured in the same run (goal: the stream at least 50% of the raw COPY's rate);
* **follow delay**: with the stream waiting on its long poll (``events.timeout_seconds``, 10 s),
  a follower is added to the site's world (the simulator sends the follow event), and the time
  until ``persons.follower`` is true is measured, F times; median and p90 (goal: median under
  1 s beyond the long-poll round trip; a waiting poll answers at once, so there is no round
  trip to add).

No assertion: it prints figures. Usage: ``.venv/bin/python bench/events.py [--events 10000]
[--follows 20]``.
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

import httpx
import psycopg

from agent.runner import CrawlRunner
from roomwatch.config import load_config
from storage.embedded import EmbeddedPostgres
from storage.jobs import Job, request_cancel
from storage.migrator import apply_migrations
from storage.tables import ROOM_EVENTS
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

OWNER = "bench_owner"
COPY_ACCOUNT = "bench_copy"


def _url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return f"postgresql://{params['user']}@/{params['dbname']}?host={params['host']}"


def _count(conn: psycopg.Connection[Any], account: str) -> int:
    row = conn.execute("SELECT count(*) FROM room_events WHERE account = %s", [account]).fetchone()
    return int(row[0]) if row else 0


def _until(condition: Any, seconds: float = 600, step: float = 0.005) -> float:
    """Polls ``condition`` until true; returns ``time.monotonic()`` when it was."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(step)
    return time.monotonic()


class Stream:
    """The room_events job, run by a crawl runner in a thread."""

    def __init__(self, runner: CrawlRunner, conninfo: str) -> None:
        self.conninfo = conninfo
        self.job_id = runner.submit("room_events", {"run_seconds": "3000"}, "cli").job_id
        self.final: Job | None = None
        self.thread = threading.Thread(target=self._run, args=[runner], daemon=True)
        self.thread.start()

    def _run(self, runner: CrawlRunner) -> None:
        self.final = runner.run(self.job_id)

    def stop(self) -> Job:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            request_cancel(conn, self.job_id)
        self.thread.join(120)
        assert self.final is not None
        return self.final


def burst(
    sim: SimulatorServer, runner: CrawlRunner, conninfo: str, events: int
) -> dict[str, float]:
    """The burst through the stream, then the raw COPY of the same rows."""
    answer = httpx.post(
        f"{sim.base_url}/_sim/events/{OWNER}", json={"burst": events, "seed": 1}, timeout=300
    )
    answer.raise_for_status()
    last_id = answer.json()["last_id"]
    sim.state.requests.clear()
    with psycopg.connect(conninfo, autocommit=True) as conn:

        def caught_up() -> bool:
            # The position is written with the events: the last id there means all are stored
            # (one row read, where a count of the growing table would load the database).
            row = conn.execute(
                "SELECT last_event_id FROM room_event_streams WHERE account = %s", [OWNER]
            ).fetchone()
            return row is not None and row[0] == last_id

        stream = Stream(runner, conninfo)
        _until(lambda: sim.state.requests.count("/events/") > 0, step=0.001)
        first = sim.state.requests.entries("/events/")[0].t
        done = _until(caught_up)
        if _count(conn, OWNER) != events:
            raise SystemExit(f"stored {_count(conn, OWNER)} events of {events}")
        job = stream.stop()
        stream_seconds = done - first
        polls = sim.state.requests.count("/events/")

        columns = [c.name for c in ROOM_EVENTS.columns]  # the account first
        names = ", ".join(columns)
        others = ", ".join(columns[1:])
        # The same rows under another account, as COPY text, read before the clock starts.
        data = bytearray()
        with conn.cursor() as cur:
            query = f"COPY (SELECT '{COPY_ACCOUNT}', {others} FROM room_events WHERE account = "
            with cur.copy(query + f"'{OWNER}') TO STDOUT") as out:
                for chunk in out:
                    data += chunk
        with conn.transaction(), conn.cursor() as cur:
            started = time.monotonic()
            with cur.copy(f"COPY room_events ({names}) FROM STDIN") as copy:
                copy.write(bytes(data))
        copy_seconds = time.monotonic() - started
        copied = _count(conn, COPY_ACCOUNT)
    if job.status != "cancelled":
        raise SystemExit(f"the stream ended {job.status}: {job.error_message}")
    return {
        "events": events,
        "polls": polls,
        "stream_s": stream_seconds,
        "stream_per_s": events / stream_seconds,
        "copy_s": copy_seconds,
        "copy_per_s": copied / copy_seconds,
    }


def follows(sim: SimulatorServer, runner: CrawlRunner, conninfo: str, n: int) -> list[float]:
    """Seconds from the simulator sending a follow to ``persons.follower`` being true."""
    delays = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        stream = Stream(runner, conninfo)
        polls = sim.state.requests.count("/events/")
        _until(lambda: sim.state.requests.count("/events/") > polls + 1)  # waiting on a poll
        for i in range(n):
            name = f"bench_fan_{i:03d}"
            time.sleep(0.3)  # the answer of the previous follow is stored; the next poll waits

            def follows_now(name: str = name) -> bool:
                row = conn.execute(
                    "SELECT follower FROM persons WHERE username = %s", [name]
                ).fetchone()
                return bool(row and row[0])

            sent = time.monotonic()
            sim.state.site.add_followers(OWNER, [name])
            delays.append(_until(follows_now, 60, 0.001) - sent)
        stream.stop()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--follows", type=int, default=20)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-bench-"))
    server = EmbeddedPostgres(data_dir / "db")
    try:
        conninfo = server.start()
        with psycopg.connect(conninfo) as conn:
            apply_migrations(conn)
        with SimulatorServer(SimulatorState()) as sim:
            sim.state.site.add_account(OWNER, "pw", followers=10)
            os.environ.update(
                {
                    "ROOMWATCH_DATA_DIR": str(data_dir / "agent"),
                    "ROOMWATCH_DATABASE_URL": _url(conninfo),
                    "ROOMWATCH_EVENTS_URL": sim.events_url(OWNER),
                    "ROOMWATCH_EVENTS_ALLOWED_HOSTS": "127.0.0.1",
                    "ROOMWATCH_LOG_LEVEL": "WARNING",
                }
            )
            config = load_config()
            runner = CrawlRunner(config, conninfo)
            figures = burst(sim, runner, conninfo, args.events)
            delays = follows(sim, runner, conninfo, args.follows)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    ratio = figures["stream_per_s"] / figures["copy_per_s"]
    print(f"\nEvents API burst: {args.events} events, {figures['polls']:.0f} long polls")
    print(f"{'path':<22} {'seconds':>8} {'events/s':>10}")
    print(f"{'stream (sim->db)':<22} {figures['stream_s']:>8.3f} {figures['stream_per_s']:>10.0f}")
    print(f"{'raw COPY':<22} {figures['copy_s']:>8.3f} {figures['copy_per_s']:>10.0f}")
    print(f"stream / raw COPY: {ratio:.1%} (goal >= 50%)")
    ordered = sorted(delays)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    print(
        f"\nfollow -> persons.follower, {len(delays)} follows, hold "
        f"{config.events.timeout_seconds} s: median {statistics.median(delays) * 1000:.0f} ms, "
        f"p90 {p90 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms (goal: median < 1 s)"
    )


if __name__ == "__main__":
    main()
