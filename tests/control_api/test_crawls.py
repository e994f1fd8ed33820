"""The crawl and schedule routes and the extended ``/status``, on a real database (no agent).

With no agent running, a queued job stays queued: these tests look at what the API writes and
answers. ``tests/agent/`` follows jobs through a real worker.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api import node_logs
from control_api.app import create_app
from roomwatch.catalog import SPIDERS
from roomwatch.config import Config, load_config
from roomwatch.logs import RedactingFilter, setup_logging
from storage.jobs import lock_job, start_job
from storage.schedules import ensure_default_schedules, sync_account_schedules
from tests.factories import AUTH, TOKEN
from tests.support import free_port

Client = TestClient[Litestar]
PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


def test_a_crawl_is_queued_and_a_second_one_conflicts(client: Client) -> None:
    created = client.post(
        "/api/v1/crawls", json={"spider": "cbhours_live", "args": {"usernames": "alice,bob"}}
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert (job["spider"], job["status"], job["trigger"], job["args"]) == (
        "cbhours_live",
        "queued",
        "api",
        {"usernames": "alice,bob"},
    )
    again = client.post("/api/v1/crawls", json={"spider": "cbhours_live"})
    body = _problem(again, 409, "spider")
    assert body["existing_job_id"] == job["job_id"]
    assert f"#{job['job_id']}" in body["detail"]
    # Another spider is independent.
    assert client.post("/api/v1/crawls", json={"spider": "followers"}).status_code == 202


@pytest.mark.parametrize(("spider", "value"), [("followers", True), ("followed_cams", "false")])
def test_confirm_loss_reaches_the_job_as_a_string(client: Client, spider: str, value: Any) -> None:
    created = client.post(
        "/api/v1/crawls", json={"spider": spider, "args": {"confirm_loss": value}}
    )
    assert created.status_code == 202, created.text
    assert created.json()["args"] == {"confirm_loss": str(value).lower()}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spider": "nope"}, "spider"),
        ({"spider": 3}, "spider"),
        ({}, "spider"),
        ({"spider": "affiliate", "extra": 1}, "extra"),
        ({"spider": "affiliate", "args": {"Bad-Name": 1}}, "args"),
        ({"spider": "affiliate", "args": {"k": [1]}}, "args"),
        ({"spider": "affiliate", "args": {"start_urls": "x"}}, "args.start_urls"),
        # An allow-list, not a deny-list: any attribute of the spider used to be settable.
        ({"spider": "followers", "args": {"first_path": "/elsewhere/"}}, "args.first_path"),
        ({"spider": "followed_cams", "args": {"session_id": "1"}}, "args.session_id"),
        ({"spider": "affiliate", "args": {"usernames": "alice"}}, "args.usernames"),
        ({"spider": "cbhours_live", "args": {"backfill": "alice"}}, "args.backfill"),
        ({"spider": "cbhours_live", "args": {"usernames": "a/b"}}, "args.usernames"),
        ({"spider": "cbhours_live", "args": {"usernames": True}}, "args.usernames"),
        ({"spider": "followers", "args": {"confirm_loss": "yes"}}, "args.confirm_loss"),
    ],
)
def test_bad_crawl_requests_name_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    _problem(client.post("/api/v1/crawls", json=body), 400, field)


def test_list_filters_and_pages(client: Client, conn: psycopg.Connection[Any]) -> None:
    ids = []
    for spider in ("affiliate", "cbhours_live", "cbhours_activity", "followers"):
        ids.append(client.post("/api/v1/crawls", json={"spider": spider}).json()["job_id"])
    client.post(f"/api/v1/crawls/{ids[1]}/cancel")

    first = client.get("/api/v1/crawls", params={"limit": 3}).json()
    assert [j["job_id"] for j in first["items"]] == ids[::-1][:3]
    rest = client.get("/api/v1/crawls", params={"limit": 3, "cursor": first["next_cursor"]})
    assert [j["job_id"] for j in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None

    cancelled = client.get("/api/v1/crawls", params={"status": "cancelled"}).json()["items"]
    assert [j["job_id"] for j in cancelled] == [ids[1]]
    by_spider = client.get("/api/v1/crawls", params={"spider": "followers"}).json()["items"]
    assert [j["job_id"] for j in by_spider] == [ids[3]]

    _problem(client.get("/api/v1/crawls", params={"spider": "nope"}), 400, "spider")
    _problem(client.get("/api/v1/crawls", params={"status": "done"}), 400, "status")
    _problem(client.get("/api/v1/crawls", params={"limit": 0}), 400, "limit")
    _problem(client.get("/api/v1/crawls", params={"cursor": "garbage"}), 400, "cursor")


def test_detail_and_not_found(client: Client) -> None:
    job = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()
    detail = client.get(f"/api/v1/crawls/{job['job_id']}").json()
    assert detail["status"] == "queued"
    assert detail["items"] == {} and detail["requests"] == 0 and detail["stats"] == {}
    _problem(client.get("/api/v1/crawls/999999"), 404, "job_id")
    assert client.get("/api/v1/crawls/0").status_code == 400


def test_cancel_queued_and_running_and_finished(
    client: Client, conn: psycopg.Connection[Any], db_url: str
) -> None:
    queued = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()
    cancelled = client.post(f"/api/v1/crawls/{queued['job_id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error_message"] == "cancelled before it started"
    # Cancelling again is harmless; the spider is free again.
    assert client.post(f"/api/v1/crawls/{queued['job_id']}/cancel").status_code == 202
    running = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()
    with psycopg.connect(db_url, autocommit=True) as supervisor:
        assert lock_job(supervisor, running["job_id"])
        assert start_job(supervisor, running["job_id"], 1, "/nonexistent.log")
        flagged = client.post(f"/api/v1/crawls/{running['job_id']}/cancel").json()
        assert flagged["status"] == "running"  # its runner stops it
        assert flagged["cancel_requested_at"] is not None
        conn.execute(
            "UPDATE crawl_jobs SET status = 'succeeded', finished_at = now(), "
            "cancel_requested_at = NULL WHERE job_id = %s",
            [running["job_id"]],
        )
    _problem(client.post(f"/api/v1/crawls/{running['job_id']}/cancel"), 409, "job_id")
    _problem(client.post("/api/v1/crawls/424242/cancel"), 404, "job_id")


def test_log_tail(client: Client, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    job = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()
    _problem(client.get(f"/api/v1/crawls/{job['job_id']}/log"), 404, "job_id")
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {n}\n" for n in range(20_000)))
    conn.execute("UPDATE crawl_jobs SET log_path = %s WHERE job_id = %s", [str(log), job["job_id"]])
    tail = client.get(f"/api/v1/crawls/{job['job_id']}/log", params={"lines": 3})
    assert tail.status_code == 200
    assert tail.headers["content-type"].startswith("text/plain")
    assert tail.text == "line 19997\nline 19998\nline 19999\n"
    assert client.get(f"/api/v1/crawls/{job['job_id']}/log").text.count("\n") == 200
    _problem(client.get(f"/api/v1/crawls/{job['job_id']}/log", params={"lines": 0}), 400, "lines")
    log.unlink()
    _problem(client.get(f"/api/v1/crawls/{job['job_id']}/log"), 404, "job_id")
    # A finished job whose log went with the job retention (or that never started) has none.
    conn.execute(
        "UPDATE crawl_jobs SET status = 'succeeded', finished_at = now(), log_path = NULL"
        " WHERE job_id = %s",
        [job["job_id"]],
    )
    gone = _problem(client.get(f"/api/v1/crawls/{job['job_id']}/log"), 404, "job_id")
    assert gone["detail"].endswith("has no log (succeeded)"), gone


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    """Two loopback ports that take connections and never answer: what was fetched from them
    waits in their backlog."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    yield sockets
    for sock in sockets:
        sock.close()


def _untouched(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def test_a_log_url_is_fetched_only_from_a_configured_scrapyd_node(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path, listeners: list[socket.socket]
) -> None:
    """A job's ``log_path`` is a URL when a Scrapyd node ran it. The API reads it only if it is
    a log of a node of ``scrapyd.urls``: any other URL in the database is not fetched."""
    node, foreign = (sock.getsockname()[1] for sock in listeners)
    dead = free_port()
    config = load_config(
        {
            "ROOMWATCH_DATA_DIR": str(tmp_path / "data"),
            "ROOMWATCH_SCRAPYD_URLS": f"http://127.0.0.1:{node},http://127.0.0.1:{dead}",
            "ROOMWATCH_SCRAPYD_USERNAME": "roomwatch",
            "ROOMWATCH_SCRAPYD_PASSWORD": "node-secret-never-shown",
            "ROOMWATCH_SCRAPYD_TIMEOUT_SECONDS": "5",
        }
    )
    with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
        client.headers.update(AUTH)
        job_id = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
        log = f"logs/roomwatch/affiliate/{job_id}.log"

        def read(log_path: str) -> Any:
            conn.execute(
                "UPDATE crawl_jobs SET log_path = %s WHERE job_id = %s", [log_path, job_id]
            )
            return client.get(f"/api/v1/crawls/{job_id}/log")

        for refused in (
            f"http://127.0.0.1:{foreign}/{log}",  # not a node
            f"http://127.0.0.1:{node}/listjobs.json",  # a node, but not one of its logs
            f"http://127.0.0.1:{node}/logs/../listjobs.json",
            f"http://someone:else@127.0.0.1:{node}/{log}",  # credentials of its own
            f"http://127.0.0.1:{node}/{log}?x=1",
            f"https://127.0.0.1:{node}/{log}",
        ):
            body = _problem(read(refused), 404, "job_id")
            assert "nor on a Scrapyd node of scrapyd.urls" in body["detail"], refused
        assert _untouched(listeners[0]) and _untouched(listeners[1])
        # A configured node that does not answer: a 502 naming it by host and port only.
        body = _problem(read(f"http://127.0.0.1:{dead}/{log}"), 502, "job_id")
        assert body["title"] == "Bad Gateway"
        assert body["detail"] == (
            f"Scrapyd node 127.0.0.1:{dead} did not answer for the log of crawl job #{job_id} "
            "(ConnectError)"
        )


class _NoRangeNode(BaseHTTPRequestHandler):
    """A node that serves one log whole (no ``Accept-Ranges``, ``Range`` ignored) behind basic
    auth; ``seen`` keeps each request's method and Range header."""

    log_path = ""
    body = b""
    seen: ClassVar[list[tuple[str, str | None]]] = []
    expected = "Basic " + base64.b64encode(b"roomwatch:node-secret-never-shown").decode()

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def _answer(self, *, with_body: bool) -> None:
        self.seen.append((self.command, self.headers.get("Range")))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        found = self.path == self.log_path
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(self.body) if found else 0))
        self.end_headers()
        if with_body and found:
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_node_that_ignores_range_is_read_whole_up_to_a_cap(
    db_url: str, conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoRangeNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"127.0.0.1:{server.server_address[1]}"
    settings = {
        "ROOMWATCH_DATA_DIR": str(tmp_path / "data"),
        "ROOMWATCH_SCRAPYD_URLS": f"http://{name}",
        "ROOMWATCH_SCRAPYD_USERNAME": "roomwatch",
        "ROOMWATCH_SCRAPYD_PASSWORD": "node-secret-never-shown",
    }
    wrong = settings | {"ROOMWATCH_SCRAPYD_PASSWORD": "not-the-node-secret"}
    try:
        with TestClient(create_app(load_config(settings), db_url, TOKEN, "test")) as client:
            client.headers.update(AUTH)
            job_id = client.post("/api/v1/crawls", json={"spider": "affiliate"}).json()["job_id"]
            _NoRangeNode.log_path = f"/logs/roomwatch/affiliate/{job_id}.log"
            _NoRangeNode.body = "".join(f"line {n}\n" for n in range(3000)).encode()
            conn.execute(
                "UPDATE crawl_jobs SET log_path = %s WHERE job_id = %s",
                [f"http://{name}{_NoRangeNode.log_path}", job_id],
            )
            url = f"/api/v1/crawls/{job_id}/log"
            tail = client.get(url, params={"lines": 2})
            assert tail.status_code == 200, tail.text
            assert tail.text == "line 2998\nline 2999\n"
            assert _NoRangeNode.seen == [("HEAD", None), ("GET", None)]
            monkeypatch.setattr(node_logs, "WHOLE_CAP", 1000)
            body = _problem(client.get(url), 502, "job_id")
            assert body["detail"].startswith(
                f"Scrapyd node {name} serves the log of crawl job #{job_id} only whole"
            )
        with TestClient(create_app(load_config(wrong), db_url, TOKEN, "test")) as client:
            client.headers.update(AUTH)
            body = _problem(client.get(url), 502, "job_id")
            assert body["detail"] == (
                f"Scrapyd node {name} refused the credentials (HTTP 401): check "
                "scrapyd.username/password or the node URL"
            )
    finally:
        server.shutdown()
        server.server_close()


def test_schedules_list_and_change(client: Client, conn: psycopg.Connection[Any]) -> None:
    ensure_default_schedules(conn)
    names = [s["name"] for s in client.get("/api/v1/schedules").json()["items"]]
    assert names == sorted(names) and "affiliate" in names
    changed = client.patch("/api/v1/schedules/affiliate", json={"cron": "*/15 * * * *"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["interval_seconds"]) == ("*/15 * * * *", None)
    paused = client.patch("/api/v1/schedules/affiliate", json={"paused": True}).json()
    assert paused["paused"] is True
    resumed = client.patch(
        "/api/v1/schedules/affiliate", json={"paused": False, "interval_seconds": 600}
    ).json()
    assert (resumed["paused"], resumed["interval_seconds"], resumed["cron"]) == (False, 600, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interval_seconds": 10}, "interval_seconds"),
        ({"interval_seconds": "often"}, "interval_seconds"),
        ({"interval_seconds": 10**12}, "interval_seconds"),
        ({"cron": "sometimes"}, "cron"),
        ({"cron": "* * * * *", "interval_seconds": 600}, "cron"),
        ({"paused": "yes"}, "paused"),
        ({"when": 1}, "when"),
        ({}, "interval_seconds"),
    ],
)
def test_bad_schedule_changes_name_the_field(
    client: Client, conn: psycopg.Connection[Any], body: dict[str, Any], field: str
) -> None:
    ensure_default_schedules(conn)
    _problem(client.patch("/api/v1/schedules/affiliate", json=body), 400, field)


def test_the_keep_running_schedule_shows_and_only_pauses(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    ensure_default_schedules(conn)
    items = {s["name"]: s for s in client.get("/api/v1/schedules").json()["items"]}
    stream = items["room_events"]
    assert (stream["keep_running"], stream["interval_seconds"], stream["cron"]) == (
        True,
        None,
        None,
    )
    assert items["affiliate"]["keep_running"] is False
    _problem(
        client.patch("/api/v1/schedules/room_events", json={"interval_seconds": 600}),
        400,
        "interval_seconds",
    )
    paused = client.patch("/api/v1/schedules/room_events", json={"paused": True})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["keep_running"]) == (True, True)


def _two_accounts_schedules(conn: psycopg.Connection[Any]) -> None:
    """The default schedules, and those of the login sessions of studio_a and studio_b."""
    ensure_default_schedules(conn)
    conn.execute(
        "INSERT INTO login_sessions (account, method, status, state) "
        "VALUES ('studio_a', 'import', 'valid', 'f'), ('studio_b', 'import', 'valid', 'f')"
    )
    sync_account_schedules(conn, {"room_events": [], "room_stats": []})


def test_an_accounts_own_schedule_shows_its_account_and_changes_alone(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    _two_accounts_schedules(conn)
    changed = client.patch("/api/v1/schedules/followers@studio_b", json={"interval_seconds": 900})
    assert changed.status_code == 200, changed.text
    items = {s["name"]: s for s in client.get("/api/v1/schedules").json()["items"]}
    assert (items["followers@studio_b"]["account"], items["followers@studio_b"]["args"]) == (
        "studio_b",
        {"account": "studio_b"},
    )
    assert items["followers@studio_b"]["interval_seconds"] == 900
    assert items["followers@studio_a"]["interval_seconds"] == items["followers"]["interval_seconds"]
    assert items["followers"]["account"] is None


def test_a_held_schedule_says_why_in_the_list_and_the_status(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    _two_accounts_schedules(conn)
    # A stream schedule of an account no URL names (its URL was removed since).
    conn.execute("INSERT INTO accounts (account) VALUES ('gone')")
    conn.execute(
        "INSERT INTO schedules (name, spider, args, interval_seconds, account) VALUES "
        "('room_stats@gone', 'room_stats', '{\"account\": \"gone\"}', 300, 'gone')"
    )
    listed = client.get("/api/v1/schedules").json()["items"]
    reported = client.get("/api/v1/status").json()["scheduler"]["schedules"]
    for items in ({s["name"]: s["held"] for s in listed}, {s["name"]: s["held"] for s in reported}):
        assert items["cbhours_live"] is None
        assert items["followers@studio_a"] is None
        assert items["room_events"] == "events.url (ROOMWATCH_EVENTS_URL) is not set"
        assert items["followers"] == (
            "the per-account schedules run instead (followers@studio_a, followers@studio_b)"
        )
        assert items["room_stats@gone"] == "stats.url (ROOMWATCH_STATS_URL) is not set"


def test_unknown_schedule_is_404(client: Client, conn: psycopg.Connection[Any]) -> None:
    _problem(client.patch("/api/v1/schedules/nope", json={"paused": True}), 404, "name")


def test_status_shows_scheduler_schedules_and_alerts(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    ensure_default_schedules(conn)
    conn.execute("UPDATE schedules SET next_run_at = now() WHERE name = 'affiliate'")
    conn.execute(
        "INSERT INTO login_sessions (account, method, status, state) "
        "VALUES ('me', 'import', 'expired', 'f')"
    )
    status = client.get("/api/v1/status").json()
    scheduler = status["scheduler"]
    assert scheduler["active"] is False and scheduler["holder"] is None
    # No agent holds the lock: a stale plan is not shown.
    assert all(s["next_run_at"] is None for s in scheduler["schedules"])
    assert [a["kind"] for a in status["alerts"]] == ["session_expired"]


def test_the_app_keeps_the_redacting_log_handlers(db_url: str, app_config: Config) -> None:
    setup_logging("INFO")
    app = create_app(app_config, db_url, "token-0123456789" * 2, "test")
    with TestClient(app) as client:
        client.get("/api/v1/health")
        handlers = logging.getLogger().handlers
        assert handlers
        assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers)


def test_the_schema_lists_each_spiders_arguments(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    args = schema["components"]["schemas"]["CrawlRequest"]["properties"]["args"]
    for name, info in SPIDERS.items():
        line = next(x for x in args["description"].splitlines() if x.startswith(f"- `{name}`:"))
        assert [arg.name for arg in info.args] == re.findall(r"`(\w+)` \(", line), line
    assert "`followers`: `confirm_loss` (boolean)" in args["description"]
