"""Property-based run over the served OpenAPI schema: no request the schema allows gets a 5xx.

Schemathesis generates requests for every operation from ``/schema/openapi.json`` (valid and
edge-case values alike) and sends them over real HTTP to the app served by uvicorn on loopback,
against a real database holding a little data.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from control_api.app import create_app
from roomwatch.config import load_config
from storage.writers import write_affiliate_poll
from tests.factories import AUTH, TOKEN, room
from tests.support import free_port, insert_room_events, room_event, with_db


@pytest.fixture(scope="module")
def served_api(
    pg_server: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API over a module-wide database with a few persons and room events, served on a
    free loopback port (with a data dir of its own: what the fuzzed routes store never reaches
    the real one); its Events URL names the room, so the room routes run their queries."""
    config = load_config(
        {
            "ROOMWATCH_DATA_DIR": str(tmp_path_factory.mktemp("fuzz") / "data"),
            "ROOMWATCH_EVENTS_URL": "https://eventsapi.chaturbate.com/events/fuzzroom/tok123456/",
        }
    )
    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(migrated_template)
            )
        )
    conninfo = with_db(pg_server, name)
    with psycopg.connect(conninfo) as conn:
        rooms = [room(f"p{i}", tags=["asian", "new"][: i % 3]) for i in range(5)]
        write_affiliate_poll(conn, rooms, observed_at=dt.datetime.now(dt.UTC), complete=True)
        now = dt.datetime.now(dt.UTC)
        insert_room_events(
            conn,
            "fuzzroom",
            [
                room_event("broadcastStart", now - dt.timedelta(hours=2)),
                room_event("userEnter", now - dt.timedelta(hours=1), username="p1"),
                room_event("tip", now - dt.timedelta(minutes=50), username="p1", tokens=5),
                room_event("follow", now - dt.timedelta(minutes=40), username="p2"),
            ],
        )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, conninfo, TOKEN, "fuzz"),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base
    server.should_exit = True
    thread.join(10)
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_no_request_the_schema_allows_gets_a_server_error(served_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served_api}/schema/openapi.json", headers=AUTH)
    failures: list[str] = []
    calls: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # every route of the API, read from the served schema

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=int(os.environ.get("ROOMWATCH_FUZZ_EXAMPLES", "20")),
            derandomize="ROOMWATCH_FUZZ_EXAMPLES" not in os.environ,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers=AUTH)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query}: {response.status_code}"
                )

        run()
    assert not failures, failures
    assert len(calls) >= 5 * len(operations)  # it really sent requests, and many
