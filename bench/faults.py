"""Fault injection: does a running agent keep its promises while things break around it?

Starts ``roomwatch simulate`` (an account following 120 rooms, followed by 240) and
``roomwatch run`` on a temporary data dir (embedded PostgreSQL) pointed at it, logs in with
``roomwatch login``, pauses every schedule and takes a clean baseline of both follow lists.
Then each round picks a fault at random (every kind once per pass, in a shuffled order),
starts a crawl (``POST /crawls`` or ``roomwatch crawl``) and strikes at a random moment of it:
``kill -9`` of the crawl process, of its CLI, of the agent, of the postmaster; or the simulator
answers 429, 5xx, a slow body, truncated JSON, a NUL byte in a room subject, an empty
followers page, or expires the session mid-crawl.
It restarts the agent when the round killed it, lets things settle and checks:

* no duplicate rows (follow events per person/kind/time or twice in a row, snapshots and live
  stats per person and job, completed polls per job);
* no follow change at all: the simulated lists never change, so every follow event after the
  baseline is a false conclusion (and one without a complete, succeeded crawl, doubly so);
* every job in a truthful final state: none ``running`` without its process, none ``queued``
  for a dead CLI, none ``succeeded`` although its crawl, CLI or agent was killed mid-crawl;
* no roomwatch process without an owner: crawl processes, Playwright or Chromium with no live
  agent or CLI above them ``ORPHAN_GRACE`` s after a kill or once things settled; a postmaster
  that a cleanly stopped agent leaves behind, or that outlives a killed agent by ``PG_GRACE``
  s and is not adopted by the next agent (whose clean stop must then stop it);
* the API answering ``/health`` and ``/status``.

Usage: ``.venv/bin/python -m bench.faults [--rounds 30] [--seed S] [--max-minutes 45]``.
Prints every anomaly with one line of detail, then rounds, faults injected and anomalies by
kind and the elapsed time; exits 1 if there was any anomaly (the goal is none).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.faults_support import (
    ACTIVE,
    DUPLICATES,
    EVENTS,
    Stack,
    alive,
    is_crawl,
    kill,
)
from upstream_sim.affiliate.routes import ONLINE_ROOMS_PATH
from upstream_sim.cbhours.routes import CBHOURS_PATH
from upstream_sim.site.list_routes import FOLLOWERS_PATH, ROOM_LIST_PATH

SPIDERS = ("affiliate", "cbhours_live", "cbhours_activity", "followed_cams", "followers")
JSON_PATHS = {
    "affiliate": ONLINE_ROOMS_PATH,
    "cbhours_live": CBHOURS_PATH,
    "cbhours_activity": CBHOURS_PATH,
    "followed_cams": ROOM_LIST_PATH,
}
PAGE_PATHS = {**JSON_PATHS, "followed_cams": "/followed-cams/", "followers": FOLLOWERS_PATH}
FAULTS: dict[str, tuple[str, ...]] = {
    "kill_crawl": SPIDERS,
    "kill_cli": SPIDERS,
    "kill_agent": SPIDERS,
    "kill_postgres": SPIDERS,
    "http_429": SPIDERS,
    "http_5xx": SPIDERS,
    "slow_body": SPIDERS,
    "truncated_json": tuple(JSON_PATHS),
    "nul_subject": ("affiliate", "followed_cams"),
    "empty_followers": ("followers",),
    "session_expiry": ("followed_cams", "followers"),
}
BROWSER_SPIDERS = ("followed_cams", "followers")
KILLS = ("kill_crawl", "kill_cli", "kill_agent", "kill_postgres")
PG_GRACE = 15.0
ORPHAN_GRACE = 5.0
QUIET = 1.0  # seconds with no orphan that end the watch after a kill early
SETTLE = 150.0


class Harness:
    """Rounds, counters and checks of one run (see the module docstring)."""

    def __init__(self, stack: Stack, rng: random.Random, kinds: list[str]) -> None:
        self.stack = stack
        self.rng = rng
        self.kinds = kinds
        self.deck: list[str] = []
        self.faults: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()
        self.anomalies: Counter[str] = Counter()
        self.killed: dict[int, float] = {}  # job id -> when its crawl, CLI or agent was killed
        self.judged: set[int] = set()
        self.reported: set[str] = set()
        self.last_event = 0
        self.round = 0
        self.expire_at = 0

    def anomaly(self, kind: str, detail: str, key: str | None = None) -> None:
        """Count an anomaly once per ``key`` (default: the detail)."""
        if (key or detail) in self.reported:
            return
        self.reported.add(key or detail)
        self.anomalies[kind] += 1
        when = f"round {self.round}" if self.round else "at the end"
        print(f"  ANOMALY {when} {kind}: {detail}", flush=True)

    # -- setup ------------------------------------------------------------------------------

    def baseline(self) -> None:
        """Pause the schedules, log in, read both follow lists once without faults."""
        for schedule in self.stack.call("GET", "/schedules").json()["items"]:
            self.stack.call("PATCH", f"/schedules/{schedule['name']}", json={"paused": True})
        self.settle()
        self.stack.login()
        for spider in ("followed_cams", "followers", "affiliate"):
            out = self.stack.run_cli("crawl", spider, timeout=300)
            print(f"baseline: {out.splitlines()[0]}", flush=True)
        rows = self.stack.sql("SELECT username FROM persons WHERE following ORDER BY 1 LIMIT 20")
        names = [name for (name,) in rows]
        self.stack.sim_post("/_sim/cbhours/trophy", usernames=names)
        self.stack.sim_post("/_sim/cbhours/live", random_online=names[:10])
        today = time.strftime("%Y-%m-%d", time.gmtime())
        start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400))
        for name in names[:5]:
            self.stack.sim_post(
                "/_sim/cbhours/activity", username=name, start_date=start, end_date=today
            )

    # -- one round --------------------------------------------------------------------------

    def play(self, number: int) -> None:
        """One round: a fault during one crawl, recovery, the checks."""
        self.round = number
        if not self.deck:  # every kind once per pass, in random order: even coverage
            self.deck = self.rng.sample(self.kinds, len(self.kinds))
        kind = self.deck.pop()
        spider = self.rng.choice(FAULTS[kind])
        via = "cli" if kind == "kill_cli" else self.rng.choice(("api", "cli"))
        self.stack.sim_call("DELETE", "/_sim/requests")
        self.arm(kind, spider)
        job_id, cli = self.stack.trigger(spider, via)
        print(f"round {number}: {kind} on {spider} via {via}, job #{job_id}", flush=True)
        hit = self.strike(kind, spider, job_id, cli, via)
        if kind == "kill_agent" and hit:
            self.after_agent_death()
        elif kind in ("kill_crawl", "kill_cli") and hit:
            self.watch_orphans(ORPHAN_GRACE)
        self.settle()
        hit = hit or (kind not in KILLS and self.fired())
        (self.faults if hit else self.missed)[kind] += 1
        status, reason, error = self.stack.sql(
            "SELECT status, finish_reason, left(error_message, 160) FROM crawl_jobs "
            "WHERE job_id = %s",
            (job_id,),
        )[0]
        print(f"  -> job #{job_id} {status} ({reason}: {error})", flush=True)
        if kind == "nul_subject" and hit and status != "succeeded":
            detail = f"job #{job_id} ({spider}) {status} over one NUL byte: {error}"
            self.anomaly("nul_subject_failed_crawl", detail)
        self.check()
        self.stack.sim_call("DELETE", "/_sim/faults")
        self.stack.sim_post("/_sim/site/switches", expire_at_list_call=0)
        if kind == "session_expiry" or not self.stack.sql(
            "SELECT 1 FROM login_sessions WHERE status = 'valid'"
        ):
            self.stack.login()

    def arm(self, kind: str, spider: str) -> None:
        """Set the simulator's fault for this round (a kill needs none)."""
        self.expire_at = 0
        times = self.rng.randint(1, 3)
        rule: dict[str, Any] = {"prefix": PAGE_PATHS[spider], "times": times}
        if kind == "http_429":
            rule.update(status=429, retry_after=1)
        elif kind == "http_5xx":
            rule.update(status=self.rng.choice((500, 502, 503)))
        elif kind == "slow_body":
            rule.update(slow_body=round(self.rng.uniform(2, 8), 1))
        elif kind == "truncated_json":
            rule.update(prefix=JSON_PATHS[spider], malformed="invalid_json")
        elif kind in ("nul_subject", "empty_followers"):
            rule.update(times=1, rewrite=kind)
            rule["prefix"] = JSON_PATHS.get(spider, rule["prefix"])
        elif kind in KILLS:  # a slow upstream keeps the crawl running long enough to hit
            rule.update(times=2, delay=round(self.rng.uniform(0.5, 2.0), 1))
        elif kind == "session_expiry" and spider == "followed_cams":
            self.expire_at = self.rng.randint(1, 3)
            self.stack.sim_post("/_sim/site/switches", expire_at_list_call=self.expire_at)
            return
        else:
            return
        self.stack.sim_post("/_sim/faults", rules=[rule])

    def fired(self) -> bool:
        """Whether the simulator's fault of this round fired."""
        if self.expire_at:
            params = {"prefix": ROOM_LIST_PATH}
            seen = self.stack.sim_call("GET", "/_sim/requests", params=params).json()["count"]
            return bool(seen >= self.expire_at)
        rules = self.stack.sim_call("GET", "/_sim/faults").json()["rules"]
        return any(r["remaining"] < r["rule"]["times"] for r in rules)

    def strike(
        self,
        kind: str,
        spider: str,
        job_id: int,
        cli: subprocess.Popen[bytes] | None,
        via: str,
    ) -> bool:
        """Hit at a random moment of a running crawl; whether it hit one still running."""
        deadline = time.monotonic() + 60
        while self.stack.job(job_id)[0] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
        if kind == "session_expiry" and spider == "followers":
            prefix = {"prefix": FOLLOWERS_PATH}
            while self.stack.sim_call("GET", "/_sim/requests", params=prefix).json()["count"] < 1:
                if self.stack.job(job_id)[0] != "running" or time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
            self.stack.sim_post("/_sim/site/sessions/expire")
            return self.stack.job(job_id)[0] == "running"
        if kind not in KILLS:
            return False
        time.sleep(self.rng.uniform(0.1, 4.0 if spider in BROWSER_SPIDERS else 1.0))
        status, pid = self.stack.job(job_id)
        # The job row names its supervisor until the crawl process is started: wait for that.
        while (
            kind == "kill_crawl"
            and status == "running"
            and not is_crawl(pid)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
            status, pid = self.stack.job(job_id)
        if status != "running":
            return False
        when = time.time()
        if kind == "kill_crawl":
            hit = kill(pid)
        elif kind == "kill_cli" and cli is not None:
            hit = kill(cli.pid)
            cli.wait()
        elif kind == "kill_agent" and self.stack.agent is not None:
            hit = kill(self.stack.agent.pid)
            self.stack.agent.wait()
        else:
            hit = kill(self.stack.postmaster())
        if hit and (kind in ("kill_crawl", "kill_cli") or (kind == "kill_agent" and via == "api")):
            self.killed[job_id] = when
        return hit

    # -- recovery ---------------------------------------------------------------------------

    def after_agent_death(self) -> None:
        """Restart the agent; a postmaster that survived its agent must be the new one's.

        Either design passes: the server dies with its agent within ``PG_GRACE`` s, or the
        restarted agent adopts it, so that the restarted agent's clean stop stops it too.
        """
        deadline = time.monotonic() + PG_GRACE
        while time.monotonic() < deadline and (self.stack.postmaster() or self.stack.orphans()):
            time.sleep(0.5)
        self.reap_orphans()
        survivor = self.stack.postmaster()
        self.stack.start_agent()
        if survivor is None:
            return
        self.stack.stop_agent()
        if self.stack.pg_outlives_agent():
            detail = f"postmaster {survivor} outlived its killed agent and the next one's stop"
            self.anomaly("orphan_postgres", detail)
        self.stack.start_agent()

    def watch_orphans(self, grace: float) -> None:
        """Report processes still without an owner ``grace`` s after a kill (not stopped yet)."""
        # Right after a kill its children still have an owner above them for a few ms (until
        # the kernel re-parents them), so an empty look proves nothing at once: only a second
        # of no orphan ends the watch early.
        deadline = time.monotonic() + grace
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.stack.orphans():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET:
                break
            time.sleep(0.25)
        self.report_orphans(f"still run {grace:.0f} s after the kill")

    def reap_orphans(self) -> None:
        """Report processes without an owner, then stop them (they are ours)."""
        self.stack.sample()
        for pid in self.report_orphans("run once things settled"):
            kill(pid)

    def report_orphans(self, when: str) -> list[int]:
        """One anomaly per kind of orphan and round (a Chromium is a dozen processes)."""
        found: dict[str, list[tuple[int, str]]] = {}
        for pid, kind, detail in self.stack.orphans():
            found.setdefault(kind, []).append((pid, detail))
        for kind, procs in found.items():
            pids = ", ".join(str(pid) for pid, _ in procs)
            detail = f"{len(procs)} process(es) {when} (pids {pids}), e.g. {procs[0][1]}"
            self.anomaly(f"orphan_{kind}", detail, key=f"orphan {kind} {self.round}")
        return [pid for procs in found.values() for pid, _ in procs]

    def settle(self) -> None:
        """Until the API answers and no job is queued or running (or ``SETTLE`` s pass)."""
        if not self.stack.api_answers(45):
            detail = f"/health, /status not both 200 for 45 s (last: {self.stack.last_api})"
            self.anomaly("api_unavailable", detail, key=f"api {self.round}")
            self.stack.stop_agent()
            self.stack.start_agent()
            if not self.stack.api_answers(60):
                raise RuntimeError("the agent did not recover after a restart")
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            clis = [p for p in self.stack.clis if p.poll() is None]
            if not clis and not self.stack.sql(ACTIVE):
                return
            time.sleep(0.5)

    # -- checks -----------------------------------------------------------------------------

    def check(self) -> None:
        """Every invariant of the module docstring, once things settled."""
        self.reap_orphans()
        for table, key, count in self.stack.sql(DUPLICATES):
            self.anomaly("duplicate_rows", f"{table} {key}: {count} rows", key=f"{table} {key}")
        self.check_jobs()
        for job_id, kind, source, status, count, polled in self.stack.sql(
            EVENTS, (self.last_event,)
        ):
            detail = f"job #{job_id} ({source}, {status}) wrote {count} {kind} events"
            if status != "succeeded" or not polled:
                self.anomaly("follow_change_without_complete_crawl", detail + " (not complete)")
            else:
                self.anomaly("false_follow_change", detail + "; the simulated lists never change")
        newest = self.stack.sql("SELECT coalesce(max(event_id), 0) FROM follow_events")
        self.last_event = int(newest[0][0])

    def check_jobs(self) -> None:
        """No job running without its process, queued for nobody, or succeeded though killed."""
        clis_alive = any(p.poll() is None for p in self.stack.clis)
        rows = self.stack.sql(
            "SELECT job_id, spider, status, pid, trigger, extract(epoch FROM finished_at) "
            "FROM crawl_jobs ORDER BY job_id"
        )
        for job_id, spider, status, pid, trigger, finished in rows:
            if job_id in self.judged:
                continue
            where = f"job #{job_id} ({spider}, {trigger})"
            if status == "running" and not alive(pid):
                self.anomaly("job_running_without_process", f"{where}: crawl pid {pid} is gone")
            elif status == "queued" and trigger == "cli" and not clis_alive:
                self.anomaly("job_queued_without_owner", f"{where}: its CLI is gone")
            elif status in ("queued", "running"):
                continue  # still working: judged in a later round
            elif status == "succeeded" and float(finished) > self.killed.get(job_id, 1e12):
                self.anomaly("killed_job_succeeded", f"{where} succeeded after it was killed")
            self.judged.add(job_id)

    def finish(self) -> None:
        """Stop the agent gracefully: its postmaster and every crawl must go with it."""
        self.round = 0
        self.stack.stop_agent()
        if self.stack.pg_outlives_agent():
            self.anomaly("orphan_postgres", "the postmaster outlived its agent's clean stop")
        self.reap_orphans()


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the figures; 1 if any anomaly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=45, help="stop starting rounds after")
    parser.add_argument("--faults", default=",".join(FAULTS), help="kinds to pick from (a,b)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and process log")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    workdir = Path(tempfile.mkdtemp(prefix="roomwatch-faults-"))
    print(f"seed {seed}; data and process log in {workdir}", flush=True)
    started = time.monotonic()
    stack = Stack(workdir)
    kinds = sorted(set(args.faults.split(",")))
    if unknown := set(kinds) - set(FAULTS):
        parser.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULTS)}")
    harness = Harness(stack, random.Random(seed), kinds)
    played = 0
    try:
        stack.start_sim()
        stack.start_agent()
        stack.start_sampler()
        harness.baseline()
        for number in range(1, args.rounds + 1):
            if time.monotonic() - started > args.max_minutes * 60:
                print(f"time bound of {args.max_minutes:.0f} min reached", flush=True)
                break
            harness.play(number)
            played = number
        harness.finish()
    finally:
        stack.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    _summary(harness, played, time.monotonic() - started, seed)
    return 1 if harness.anomalies else 0


def _summary(harness: Harness, rounds: int, elapsed: float, seed: int) -> None:
    def by_kind(counts: Counter[str]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"

    print(f"rounds: {rounds} (seed {seed}), elapsed {elapsed:.0f} s")
    print(f"faults injected: {sum(harness.faults.values())} ({by_kind(harness.faults)})")
    print(f"faults missed (the crawl ended before, or never asked): {by_kind(harness.missed)}")
    print(f"processes watched: {by_kind(harness.stack.seen)}")
    print(f"anomalies: {sum(harness.anomalies.values())} ({by_kind(harness.anomalies)})")


if __name__ == "__main__":
    sys.exit(main())
