"""Times the web pages against the JSON routes they are built on, same data, same server, same run.

Builds the 100,000-person database of ``bench/api_load.py`` (same generator, same seed), serves
the real app with uvicorn in a separate process (one worker, as ``roomwatch run`` does), signs
in through ``/login`` like a browser, then asks one request at a time (keep-alive, so the time
is the server's plus a loopback round trip) for, interleaved so both see the same noise:

* ``/users`` (default view) against ``GET /api/v1/persons?limit=50``;
* ``/users?tag=...`` against ``GET /api/v1/persons?tag=...&limit=50`` over five tags, common to
  rare;
* ``/follow`` (its Following tab, with both lists' counts and recent events) against
  ``GET /api/v1/persons?following=true&limit=50``;
* ``/users/{username}`` (profile) against ``GET /api/v1/persons/{username}``, and against the
  sum of every JSON route a client needs to show the same (detail, the three history series,
  activity), over random persons.

It prints the median and p90 of each and the page-to-JSON ratios. Goals of issue 10: a page
costs at most 1.5x its JSON route and ``/users`` stays under 50 ms median on a quiet machine; a
missed goal prints a ``GOAL MISSED:`` line (the exit code is non-zero only on errors).

Usage: ``.venv/bin/python -m bench.ui [--persons 100000] [--requests 200]``. Figures:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.api_load import (
    API,
    PERSON_CACHE_SIZE,
    Scale,
    free_port,
    load,
    pick_targets,
    serve,
    wait_until_up,
)
from storage.embedded import EmbeddedPostgres

PAGE_RATIO_GOAL = 1.5
USERS_MEDIAN_GOAL_MS = 50.0


class Client:
    """One keep-alive connection; every request is timed from send to the last body byte."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = headers

    def get(self, path: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        return (time.perf_counter() - started) * 1000, response.status, body


def sign_in(port: int, token: str) -> str:
    """The ``roomwatch_session`` cookie, obtained through the sign-in form as a browser does."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    login_cookie = response.getheader("set-cookie", "").split(";")[0]
    found = re.search(r'name="login_csrf" value="([^"]+)"', page)
    if not found:
        raise RuntimeError("no sign-in form at /login")
    body = urllib.parse.urlencode({"token": token, "login_csrf": found.group(1), "next": "/users"})
    connection.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie},
    )
    answer = connection.getresponse()
    answer.read()
    cookies = [v for k, v in answer.getheaders() if k.lower() == "set-cookie"]
    session = next((c.split(";")[0] for c in cookies if c.startswith("roomwatch_session=")), "")
    if answer.status != 303 or not session:
        raise RuntimeError(f"sign-in failed: {answer.status}")
    return session


@dataclass(frozen=True)
class Pair:
    """A page, and the JSON route(s) whose summed time is its baseline, for one sample."""

    page: str
    json: tuple[str, ...]


@dataclass
class Timing:
    label: str
    page_ms: list[float]
    json_ms: list[float]

    def line(self) -> str:
        page, base = statistics.median(self.page_ms), statistics.median(self.json_ms)
        p90 = statistics.quantiles(self.page_ms, n=10)[-1]
        j90 = statistics.quantiles(self.json_ms, n=10)[-1]
        return (
            f"{self.label:<52} {page:>8.1f} {p90:>8.1f} {base:>8.1f} {j90:>8.1f} "
            f"{page / base:>6.2f}x"
        )

    @property
    def ratio(self) -> float:
        return statistics.median(self.page_ms) / statistics.median(self.json_ms)


def measure(
    label: str,
    pairs: Sequence[Pair],
    pages: Client,
    api: Client,
    requests: int,
    check: Callable[[str, bytes, bytes], None],
) -> Timing:
    """``requests`` samples (after a warm-up of a fifth as many), page and JSON interleaved."""
    timing = Timing(label, [], [])
    warmup = max(5, requests // 5)
    for i in range(warmup + requests):
        pair = pairs[i % len(pairs)]
        page_ms, status, body = pages.get(pair.page)
        if status != 200:
            raise RuntimeError(f"{pair.page}: {status} {body[:200]!r}")
        json_ms = 0.0
        answers = []
        for path in pair.json:
            spent, status, answer = api.get(path)
            if status != 200:
                raise RuntimeError(f"{path}: {status} {answer[:200]!r}")
            json_ms += spent
            answers.append(answer)
        check(pair.page, body, answers[0])
        if i >= warmup:
            timing.page_ms.append(page_ms)
            timing.json_ms.append(json_ms)
    print(f"  {timing.line()}", flush=True)
    return timing


def _same_rows(path: str, page: bytes, answer: bytes) -> None:
    """The page shows the persons the JSON route lists, in its order."""
    shown = re.findall(rb'<tr data-username="([^"]+)"', page)
    listed = [item["username"].encode() for item in json.loads(answer)["items"]]
    if shown != listed:
        raise RuntimeError(f"{path}: {len(shown)} rows, not the {len(listed)} the API lists")


def _same_person(path: str, page: bytes, answer: bytes) -> None:
    if json.loads(answer)["username"].encode() not in page:
        raise RuntimeError(f"{path}: the profile does not name its person")


def run(port: int, token: str, scale: Scale, targets_usernames: list[str], tags: list[str],
        requests: int, seed: int) -> list[Timing]:  # fmt: skip
    cookie = sign_in(port, token)
    pages = Client(port, {"Cookie": cookie})
    api = Client(port, {"Authorization": f"Bearer {token}"})
    rng = random.Random(seed)
    profiles = rng.sample(targets_usernames, min(200, len(targets_usernames)))

    def tagged(tag: str) -> Pair:
        query = urllib.parse.urlencode({"tag": tag})
        return Pair(f"/users?{query}", (f"{API}/persons?{query}&limit=50",))

    def profile(name: str, full: bool) -> Pair:
        json = [f"{API}/persons/{name}"]
        if full:
            json += [
                f"{API}/persons/{name}/history?metric={m}" for m in ("followers", "rank", "grank")
            ]
            json.append(f"{API}/persons/{name}/activity")
        return Pair(f"/users/{name}", tuple(json))

    print(f"{'':2}{'page (vs JSON)':<52} {'p50 ms':>8} {'p90':>8} {'JSON p50':>8} {'p90':>8} "
          f"{'ratio':>7}")  # fmt: skip
    return [
        measure(
            "/users (default) vs /persons",
            [Pair("/users", (f"{API}/persons?limit=50",))],
            pages,
            api,
            requests,
            _same_rows,
        ),
        measure(
            "/users?tag= vs /persons?tag=",
            [tagged(t) for t in tags],
            pages,
            api,
            requests,
            _same_rows,
        ),
        measure(
            "/follow (Following tab) vs /persons?following=true",
            [Pair("/follow", (f"{API}/persons?following=true&limit=50",))],
            pages,
            api,
            requests,
            _same_rows,
        ),
        measure(
            "/users/{u} vs /persons/{u}",
            [profile(u, False) for u in profiles],
            pages,
            api,
            requests,
            _same_person,
        ),
        measure(
            "/users/{u} vs detail+3 histories+activity",
            [profile(u, True) for u in profiles],
            pages,
            api,
            requests,
            _same_person,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000, help="fewer for a quick check")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per row")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    scale = Scale(persons=args.persons, detail_usernames=min(2_000, args.persons))
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-ui-bench-"))
    server = EmbeddedPostgres(data_dir)
    try:
        conninfo = server.start()
        print(f"loading {scale.persons:,} persons and their history", flush=True)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            load(conn, scale, args.seed)
            targets = pick_targets(conn, scale, args.seed)
        token = secrets.token_urlsafe(32)
        port = free_port()
        api_server = multiprocessing.get_context("spawn").Process(
            target=serve,
            args=(conninfo, port, str(data_dir), token, PERSON_CACHE_SIZE),
            daemon=True,
        )
        api_server.start()
        try:
            wait_until_up(f"http://127.0.0.1:{port}", token, api_server)
            timings = run(port, token, scale, targets.usernames, list(targets.tags),
                          args.requests, args.seed)  # fmt: skip
        finally:
            api_server.terminate()
            api_server.join(15)
            if api_server.is_alive():
                api_server.kill()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"total {time.perf_counter() - started:.0f} s")
    users = timings[0]
    if statistics.median(users.page_ms) >= USERS_MEDIAN_GOAL_MS:
        print(f"GOAL MISSED: /users median {statistics.median(users.page_ms):.1f} ms "
              f"(goal < {USERS_MEDIAN_GOAL_MS:.0f} ms)")  # fmt: skip
    for timing in (timings[0], timings[1], timings[2], timings[4]):
        if timing.ratio > PAGE_RATIO_GOAL:
            print(f"GOAL MISSED: {timing.label}: {timing.ratio:.2f}x (goal <= {PAGE_RATIO_GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
