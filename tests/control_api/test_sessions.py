"""``/sessions`` over HTTP: import checked against the site, list without secrets, verify, delete.

Cookies come from a real login session opened on the simulated site; verification drives a real
headless Chromium against it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.app import create_app
from roomwatch.config import Config, load_config
from tests.factories import AUTH, TOKEN
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

ACCOUNT, PASSWORD = "alice", "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorState()) as server:
        server.state.site.add_account(ACCOUNT, PASSWORD, followed_online=2, followed_total=5)
        yield server


@pytest.fixture
def config(sim: SimulatorServer) -> Config:
    return load_config(
        {
            "ROOMWATCH_DATA_DIR": tempfile.mkdtemp(prefix="roomwatch-sessions-api-"),
            "ROOMWATCH_CHATURBATE_URL": sim.base_url,
            "ROOMWATCH_BROWSER": "/usr/bin/chromium",
        }
    )


@pytest.fixture
def client(db_url: str, config: Config) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(config, db_url, TOKEN, "test")) as test_client:
        test_client.headers.update(AUTH)
        yield test_client


def _cookies(sim: SimulatorServer, sessionid: str) -> str:
    host = sim.base_url.split("//")[1].split(":")[0]
    return json.dumps(
        [
            {
                "domain": host,
                "name": "sessionid",
                "value": sessionid,
                "path": "/",
                "httpOnly": True,
                "secure": False,
                "hostOnly": True,
            }
        ]
    )


def test_import_list_verify_delete(
    client: TestClient[Litestar], sim: SimulatorServer, config: Config, db: psycopg.Connection[Any]
) -> None:
    sessionid = sim.state.site.open_session(ACCOUNT)
    created = client.post(
        "/api/v1/sessions",
        content=_cookies(sim, sessionid),
        headers={"Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["status"], row["method"], row["account"]) == ("valid", "import", ACCOUNT)
    assert sessionid not in created.text

    listed = client.get("/api/v1/sessions")
    assert [s["session_id"] for s in listed.json()] == [row["session_id"]]
    assert sessionid not in listed.text
    stored = db.execute("SELECT state FROM login_sessions").fetchall()
    assert len(stored) == 1
    assert sessionid.encode() not in stored[0][0]  # encrypted at rest, in its row
    assert not Path(config.data_dir, "sessions").exists()  # and nowhere else

    sim.state.site.expire_sessions(sessionid=sessionid)
    verified = client.post(f"/api/v1/sessions/{row['session_id']}/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["result"] == "expired"
    assert verified.json()["session"]["status"] == "expired"

    assert client.delete(f"/api/v1/sessions/{row['session_id']}").status_code == 204
    assert client.get("/api/v1/sessions").json() == []
    assert db.execute("SELECT count(*) FROM login_sessions").fetchone() == (0,)
    missing = client.delete(f"/api/v1/sessions/{row['session_id']}")
    assert missing.status_code == 404
    assert missing.json()["field"] == "session_id"


def test_cookies_that_are_not_logged_in_are_refused(
    client: TestClient[Litestar], sim: SimulatorServer
) -> None:
    response = client.post(
        "/api/v1/sessions",
        content=_cookies(sim, "x" * 32),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body"
    assert client.get("/api/v1/sessions").json() == []


def test_a_file_without_a_session_cookie_names_the_problem(
    client: TestClient[Litestar],
) -> None:
    response = client.post(
        "/api/v1/sessions?verify=false", content="[]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert "sessionid" in response.json()["detail"]
