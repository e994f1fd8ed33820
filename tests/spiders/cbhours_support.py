"""Helpers for the CBHours crawl tests: point a crawl at the simulator, seed persons, read logs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest

from roomwatch.config import Config, load_config
from upstream_sim.cbhours.routes import CBHOURS_PATH
from upstream_sim.requests_log import RequestRecord
from upstream_sim.server import SimulatorServer

FAST_INTERVAL = 0.1
"""The simulator's limit in most tests: short, so pacing costs little, but always enforced."""


def cbhours_config(
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorServer,
    *,
    interval: float | None = FAST_INTERVAL,
    **env: str,
) -> Config:
    """The crawl config (and environment, inherited by crawl processes) for CBHours crawls.

    Args:
        monkeypatch: the test's, to set the environment.
        sim: the simulator; its limiter gets ``interval`` (None: leave the real 1 s).
        interval: the simulator's limit; crawls pace at 1.2 times it. None keeps the real
            limit and the configured default pace.
        **env: more ``ROOMWATCH_*`` variables (name without the prefix).
    """
    monkeypatch.setenv("ROOMWATCH_CBHOURS_URL", sim.cbhours_url)
    monkeypatch.setenv("ROOMWATCH_BACKOFF_BASE_SECONDS", "0.2")
    if interval is not None:
        sim.state.cbhours.rate_limit.configure(enabled=True, interval=interval, tolerance=0.02)
        monkeypatch.setenv("ROOMWATCH_CBHOURS_MIN_INTERVAL_SECONDS", str(interval * 1.2))
    for name, value in env.items():
        monkeypatch.setenv(f"ROOMWATCH_{name}", value)
    return load_config()


def add_persons(db: psycopg.Connection[Any], names: list[str], **columns: Any) -> None:
    """Inserts persons (``following`` true unless given) with these column values."""
    values = {"following": True, **columns}
    keys = ", ".join(values)
    marks = ", ".join(["%s"] * (len(values) + 1))
    with db.cursor() as cur:
        cur.executemany(
            f"INSERT INTO persons (username, {keys}) VALUES ({marks})",
            [[name, *values.values()] for name in names],
        )
    db.commit()


def api_requests(sim: SimulatorServer) -> list[RequestRecord]:
    """The simulator's answered CBHours requests, oldest first."""
    return sim.state.requests.entries(CBHOURS_PATH)


def params(record: RequestRecord) -> dict[str, str]:
    """A logged request's query parameters (first value of each)."""
    return {key: values[0] for key, values in parse_qs(record.query).items()}


def scalar(db: psycopg.Connection[Any], query: str, *args: Any) -> Any:
    """The first column of the first row."""
    row = db.execute(query, args).fetchone()
    assert row is not None
    return row[0]
