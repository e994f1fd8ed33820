"""Helpers for the CBHours crawl tests: seed persons, read the simulator's log (the crawl's
set-up is the ``cbhours`` fixture, tests/conftest.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import psycopg

from upstream_sim.cbhours.routes import CBHOURS_PATH
from upstream_sim.requests_log import RequestRecord
from upstream_sim.server import SimulatorServer


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
