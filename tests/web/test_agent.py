"""The Agent page over HTTP (no browser): schedules, Run now, jobs, login sessions, alerts.

Every form must store exactly what its API route stores and refuse what it refuses; these
tests check what reached the database, not only what the page says.
"""

from __future__ import annotations

import json
import re
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
from sessions.store import save_session
from storage.alerts import read_alerts
from storage.jobs import finish_job, get_job, lock_job, start_job
from storage.schedules import ensure_default_schedules, list_schedules
from tests.factories import TOKEN
from tests.support import cookie_state
from tests.web.pages_support import csrf_of, sign_in
from upstream_sim.server import SimulatorServer
from upstream_sim.state import SimulatorState

Client = TestClient[Litestar]
SECRET = "s3cr3t-session-value-0123456789"
MARKUP = '<script>alert("x")</script><b>bold</b>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"


@pytest.fixture
def config() -> Config:
    return load_config({"ROOMWATCH_DATA_DIR": tempfile.mkdtemp(prefix="roomwatch-agent-page-")})


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        ensure_default_schedules(connection)
        yield connection


@pytest.fixture
def client(db_url: str, config: Config, conn: psycopg.Connection[Any]) -> Iterator[Client]:
    """A browser signed in to the pages (no bearer token)."""
    with TestClient(create_app(config, db_url, TOKEN, "test")) as test_client:
        assert sign_in(test_client).status_code == 303
        yield test_client


def _form(client: Client, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf_of(client), **fields}


def _schedule(conn: psycopg.Connection[Any], name: str) -> Any:
    return next(s for s in list_schedules(conn) if s.name == name)


def _row(page: str, marker: str) -> str:
    """The table row (``<tr ...>...</tr>``) that carries ``marker`` in its opening tag."""
    found = re.search(rf"<tr[^>]*{re.escape(marker)}[^>]*>.*?</tr>", page, re.S)
    assert found, marker
    return found.group(0)


def test_schedules_are_shown_with_kind_state_and_forms(client: Client) -> None:
    page = client.get("/agent")
    assert page.status_code == 200
    row = _row(page.text, 'data-schedule="affiliate"')
    assert 'data-paused="false"' in row
    assert "interval: every 5 min" in row
    assert 'name="interval_seconds" type="number" min="1" value="300"' in row
    assert ">Pause</button>" in row
    assert 'action="/agent/schedules/affiliate"' in row
    # No agent holds the scheduler lock: the page says nothing fires, and plans no next run.
    assert "No agent schedules crawls" in page.text
    assert "not planned" in row


def test_a_held_schedule_shows_why_it_does_not_fire(client: Client) -> None:
    # The test app's configuration sets no Events URL: the stream's schedule is held.
    page = client.get("/agent").text
    row = _row(page, 'data-schedule="room_events"')
    assert ">held</span>" in row
    assert "events.url (ROOMWATCH_EVENTS_URL) is not set" in row
    assert "held" not in _row(page, 'data-schedule="cbhours_live"')


def test_pause_resume_interval_and_cron_are_stored_and_shown(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    paused = client.post(
        "/agent/schedules/affiliate", data=_form(client, paused="true"), follow_redirects=False
    )
    assert paused.status_code == 303
    assert paused.headers["location"] == "/agent#schedule-affiliate"
    assert _schedule(conn, "affiliate").paused is True
    row = _row(client.get("/agent").text, 'data-schedule="affiliate"')
    assert 'data-paused="true"' in row and ">Resume</button>" in row

    client.post("/agent/schedules/affiliate", data=_form(client, paused="false"))
    assert _schedule(conn, "affiliate").paused is False

    client.post("/agent/schedules/affiliate", data=_form(client, cron="*/15 * * * *"))
    stored = _schedule(conn, "affiliate")
    assert (stored.cron, stored.interval_seconds) == ("*/15 * * * *", None)
    assert "cron <code>*/15 * * * *</code>" in _row(
        client.get("/agent").text, 'data-schedule="affiliate"'
    )

    client.post("/agent/schedules/affiliate", data=_form(client, interval_seconds="600"))
    stored = _schedule(conn, "affiliate")
    assert (stored.cron, stored.interval_seconds) == (None, 600)
    assert "every 10 min" in _row(client.get("/agent").text, 'data-schedule="affiliate"')
    # The other schedules were left alone.
    assert _schedule(conn, "followers").interval_seconds == 6 * 3600


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"cron": "sometimes"}, "cron: not a five-field crontab expression"),
        ({"cron": "61 * * * *"}, "cron: not a five-field crontab expression"),
        ({"interval_seconds": "10"}, "interval_seconds: must be at least 60 seconds"),
        ({"interval_seconds": "often"}, "interval_seconds: Expected `int | null`, got `str`"),
        ({"interval_seconds": str(10**12)}, "interval_seconds: Expected `int` &lt;= "),
        ({"paused": "perhaps"}, "paused: Expected `bool | null`, got `str`"),
        ({}, "interval_seconds: give interval_seconds, cron or paused"),
    ],
)
def test_a_bad_change_is_shown_naming_the_field_and_nothing_is_stored(
    client: Client, conn: psycopg.Connection[Any], fields: dict[str, str], shown: str
) -> None:
    before = _schedule(conn, "affiliate")
    answer = client.post("/agent/schedules/affiliate", data=_form(client, **fields))
    assert answer.status_code == 400
    assert "text/html" in answer.headers["content-type"]
    alert = re.search(r'<p class="error answer" role="alert"[^>]*>(.*?)</p>', answer.text, re.S)
    assert alert, answer.text
    assert "<strong>affiliate</strong>: " + shown in alert.group(1)
    assert _schedule(conn, "affiliate") == before


def test_an_unknown_schedule_is_a_404_page(client: Client) -> None:
    answer = client.post("/agent/schedules/nope", data=_form(client, paused="true"))
    assert answer.status_code == 404
    assert "no schedule named" in answer.text


def test_nul_is_refused_in_paths_and_fields(client: Client, conn: psycopg.Connection[Any]) -> None:
    """PostgreSQL text cannot hold NUL: a 400 page naming the field, never a 500."""
    answer = client.post("/agent/schedules/a%00b", data=_form(client, paused="true"))
    assert answer.status_code == 400 and "name: NUL characters are not accepted" in answer.text
    answer = client.post("/agent/sessions", data=_form(client, cookies="[]", account="a\x00b"))
    assert answer.status_code == 400 and "account: NUL characters are not accepted" in answer.text
    answer = client.post("/agent/schedules/affiliate", data=_form(client, cron="* * * * *\x00"))
    assert answer.status_code == 400 and "cron: NUL characters are not accepted" in answer.text
    assert conn.execute("SELECT count(*) FROM login_sessions").fetchone() == (0,)
    assert _schedule(conn, "affiliate").cron is None
    assert client.get("/users?q=a%00b").status_code == 400


def test_every_form_is_refused_without_the_csrf_token(
    client: Client, conn: psycopg.Connection[Any], config: Config
) -> None:
    row = save_session(conn, config, cookie_state(SECRET), account="me", method="import")
    job = client.post("/agent/crawls", data=_form(client, spider="cbhours_live"))
    job_id = int(job.url.path.rsplit("/", 1)[1])
    forms = [
        ("/agent/schedules/affiliate", {"paused": "true"}),
        ("/agent/crawls", {"spider": "affiliate"}),
        (f"/agent/jobs/{job_id}/cancel", {}),
        ("/agent/sessions", {"cookies": "[]"}),
        (f"/agent/sessions/{row.session_id}/verify", {}),
        (f"/agent/sessions/{row.session_id}/delete", {}),
    ]
    for path, fields in forms:
        for token in (None, "forged"):
            data = fields if token is None else {**fields, "csrf_token": token}
            answer = client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, path
            assert "CSRF" in answer.text
    assert _schedule(conn, "affiliate").paused is False
    assert conn.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (1,)
    assert get_job(conn, job_id).status == "queued"  # type: ignore[union-attr]
    assert conn.execute("SELECT count(*) FROM login_sessions").fetchone() == (1,)


def test_run_now_queues_a_job_and_a_second_is_a_409_linking_it(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    page = client.get("/agent").text
    for spider in ("affiliate", "cbhours_live", "cbhours_activity", "followed_cams", "followers"):
        assert f'<form id="run-{spider}" method="post" action="/agent/crawls"' in page
    # The allow-listed arguments are the form's options.
    assert 'name="args.confirm_loss" value="true"' in _row(page, 'data-spider="followers"')
    assert 'name="args.usernames"' in _row(page, 'data-spider="cbhours_live"')
    assert 'name="args.run_seconds" type="number"' in _row(page, 'data-spider="room_events"')
    assert "args." not in _row(page, 'data-spider="affiliate"')

    started = client.post(
        "/agent/crawls", data=_form(client, spider="affiliate"), follow_redirects=False
    )
    assert started.status_code == 303
    job_id = int(started.headers["location"].removeprefix("/agent/jobs/"))
    job = get_job(conn, job_id)
    assert job is not None
    assert (job.spider, job.status, job.trigger, job.args) == ("affiliate", "queued", "api", {})

    again = client.post("/agent/crawls", data=_form(client, spider="affiliate"))
    assert again.status_code == 409
    assert f"a affiliate job is already queued or running (#{job_id})" in again.text
    assert f'<a href="/agent/jobs/{job_id}">Show job #{job_id}</a>' in again.text
    assert conn.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (1,)
    # The Run now table links the active job.
    assert f'href="/agent/jobs/{job_id}">#{job_id} active' in again.text


def test_run_now_passes_allow_listed_arguments_only(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    confirmed = client.post(
        "/agent/crawls",
        data=_form(client, spider="followers", **{"args.confirm_loss": "true"}),
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    job_id = int(confirmed.headers["location"].removeprefix("/agent/jobs/"))
    assert get_job(conn, job_id).args == {"confirm_loss": "true"}  # type: ignore[union-attr]
    named = client.post(
        "/agent/crawls",
        data=_form(client, spider="cbhours_live", **{"args.usernames": "alice, bob"}),
        follow_redirects=False,
    )
    job_id = int(named.headers["location"].removeprefix("/agent/jobs/"))
    assert get_job(conn, job_id).args == {"usernames": "alice, bob"}  # type: ignore[union-attr]

    for fields, shown in [
        ({"spider": "affiliate", "args.usernames": "a"}, "args.usernames: not an argument"),
        ({"spider": "cbhours_activity", "args.usernames": "a;b"}, "args.usernames: expected"),
        ({"spider": "followed_cams", "args.confirm_loss": "yes"}, "args.confirm_loss: expected"),
        ({"spider": "nope"}, "spider: unknown spider"),
        ({}, "spider: unknown spider"),
    ]:
        refused = client.post("/agent/crawls", data=_form(client, **fields))
        assert refused.status_code == 400, fields
        assert shown in refused.text, fields
    assert conn.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (2,)


def test_job_page_and_fragment_follow_the_job_until_it_ends(
    client: Client, conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    started = client.post("/agent/crawls", data=_form(client, spider="affiliate"))
    job_id = int(started.url.path.rsplit("/", 1)[1])
    queued = started.text
    assert 'data-status="queued"' in queued
    assert f'data-refresh="/agent/jobs/{job_id}/fragment"' in queued
    assert "data-done" not in queued
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in queued
    assert f'action="/agent/jobs/{job_id}/cancel"' in queued
    assert "has no log yet (queued)" in queued

    log = tmp_path / "job.log"
    log.write_text("".join(f"line {n}\n" for n in range(500)))
    with psycopg.connect(db_url, autocommit=True) as supervisor:
        assert lock_job(supervisor, job_id)
        assert start_job(supervisor, job_id, 1, str(log))
        fragment = client.get(f"/agent/jobs/{job_id}/fragment")
        assert fragment.status_code == 200
        assert fragment.text.lstrip().startswith('<section class="job card"')
        assert "<html" not in fragment.text and "<nav" not in fragment.text
        assert 'data-status="running"' in fragment.text
        assert '<span class="status status-running">running</span>' in fragment.text
        assert "data-done" not in fragment.text
        assert "line 499\n" in fragment.text and "line 459\n" not in fragment.text
        finish_job(
            supervisor,
            job_id,
            "succeeded",
            finish_reason="finished",
            stats={"response_received_count": 3, "item_scraped_count": 7},
        )
    conn.execute(
        "UPDATE crawl_jobs SET items = '{\"rooms\": 7}', requests = 4 WHERE job_id = %s", [job_id]
    )
    done = client.get(f"/agent/jobs/{job_id}/fragment").text
    assert 'data-done="true"' in done
    assert '<span class="status status-succeeded">succeeded</span>' in done
    assert "rooms 7" in done and "3 · 4 · 0 · 0" in done and "finished" in done
    assert "Cancel</button>" not in done
    page = client.get(f"/agent/jobs/{job_id}").text
    assert 'data-done="true"' in page and 'http-equiv="refresh"' not in page
    row = _row(client.get("/agent").text, f'data-job-id="{job_id}"')
    assert "status-succeeded" in row and "rooms 7" in row and ">api<" in row


def test_cancel_from_the_job_page(client: Client, conn: psycopg.Connection[Any]) -> None:
    started = client.post("/agent/crawls", data=_form(client, spider="affiliate"))
    job_id = int(started.url.path.rsplit("/", 1)[1])
    cancelled = client.post(f"/agent/jobs/{job_id}/cancel", data=_form(client))
    assert cancelled.status_code == 200 and cancelled.url.path == f"/agent/jobs/{job_id}"
    assert 'data-status="cancelled"' in cancelled.text and 'data-done="true"' in cancelled.text
    assert get_job(conn, job_id).status == "cancelled"  # type: ignore[union-attr]
    conn.execute("UPDATE crawl_jobs SET cancel_requested_at = NULL WHERE job_id = %s", [job_id])
    ended = client.post(f"/agent/jobs/{job_id}/cancel", data=_form(client))
    assert ended.status_code == 409 and "has already ended" in ended.text
    assert client.get("/agent/jobs/999999").status_code == 404


def test_broadcaster_text_in_errors_and_logs_is_escaped(
    client: Client, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    started = client.post("/agent/crawls", data=_form(client, spider="affiliate"))
    job_id = int(started.url.path.rsplit("/", 1)[1])
    log = tmp_path / "job.log"
    log.write_text(f"room subject: {MARKUP}\n")
    conn.execute(
        "UPDATE crawl_jobs SET status = 'failed', finished_at = now(), started_at = now(), "
        "finish_reason = 'error', error_message = %s, log_path = %s WHERE job_id = %s",
        [f"bad room {MARKUP}", str(log), job_id],
    )
    for path in (f"/agent/jobs/{job_id}", f"/agent/jobs/{job_id}/fragment", "/agent"):
        text = client.get(path).text
        assert MARKUP not in text, path
        assert "<b>bold</b>" not in text and "<script>alert" not in text, path
        assert ESCAPED in text, path


def test_sessions_are_listed_without_secrets_and_deleted(
    client: Client, conn: psycopg.Connection[Any], config: Config
) -> None:
    row = save_session(conn, config, cookie_state(SECRET), account="alice", method="import")
    conn.execute(
        "UPDATE login_sessions SET status = 'valid', last_verified_at = now() "
        "WHERE session_id = %s",
        [row.session_id],
    )
    page = client.get("/agent").text
    listed = _row(page, f'data-session-id="{row.session_id}"')
    assert "alice" in listed and '<span class="health-valid">valid</span>' in listed
    assert "import" in listed and "ago)" in listed
    assert SECRET not in page and "roomwatch-session" not in page

    deleted = client.post(
        f"/agent/sessions/{row.session_id}/delete", data=_form(client), follow_redirects=False
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/agent#sessions"
    assert conn.execute("SELECT count(*) FROM login_sessions").fetchone() == (0,)
    assert not (Path(config.data_dir) / "sessions").exists()  # sessions live in the database
    assert f'data-session-id="{row.session_id}"' not in client.get("/agent").text
    gone = client.post(f"/agent/sessions/{row.session_id}/delete", data=_form(client))
    assert gone.status_code == 404


def test_cookie_import_by_paste_and_by_file(
    client: Client, conn: psycopg.Connection[Any], config: Config
) -> None:
    cookies = json.dumps(
        [{"domain": "chaturbate.com", "name": "sessionid", "value": SECRET, "path": "/"}]
    )
    pasted = client.post(
        "/agent/sessions", data=_form(client, cookies=cookies, account="bob"), files={}
    )
    assert pasted.status_code == 200, pasted.text
    # Post/redirect/get: the form's answer is a 303, so a reload cannot store the cookies twice.
    assert [step.status_code for step in pasted.history] == [303]
    assert "stored: account bob, unknown" in pasted.text
    assert "stored: account bob" not in client.get("/agent").text  # shown once
    netscape = f".chaturbate.com\tTRUE\t/\tFALSE\t0\tsessionid\t{SECRET}\n"
    uploaded = client.post(
        "/agent/sessions",
        data=_form(client),
        files={"cookie_file": ("cookies.txt", netscape.encode(), "text/plain")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert "stored: account unknown, unknown" in uploaded.text
    assert SECRET not in pasted.text + uploaded.text
    rows = conn.execute("SELECT account, method FROM login_sessions ORDER BY 1").fetchall()
    assert rows == [("bob", "import"), ("unknown", "import")]

    for fields, shown in [
        ({"cookies": "[]"}, "cookies: "),
        ({"cookies": "not cookies at all"}, "cookies: "),
        ({}, "cookies: paste the cookies or choose a file"),
    ]:
        refused = client.post("/agent/sessions", data=_form(client, **fields), files={})
        assert refused.status_code == 400, fields
        assert re.search(rf'role="alert" data-section="sessions">{shown}', refused.text), fields
    assert conn.execute("SELECT count(*) FROM login_sessions").fetchone() == (2,)


def test_active_alerts_are_shown(
    client: Client, conn: psycopg.Connection[Any], config: Config
) -> None:
    assert "No alerts" in client.get("/agent").text
    conn.execute(
        "INSERT INTO login_sessions (account, method, status, state) "
        "VALUES ('carol', 'import', 'expired', 'f')"
    )
    for _ in range(config.alerts.failures_in_a_row):
        conn.execute(
            "INSERT INTO crawl_jobs (spider, args, trigger, status, finished_at, error_message) "
            "VALUES ('cbhours_live', '{}', 'schedule', 'failed', now(), %s)",
            [f"upstream said {MARKUP}"],
        )
    page = client.get("/agent").text
    assert "No alerts" not in page
    alerts = re.findall(r'<li class="alert" data-kind="([a-z_]+)">(.*?)</li>', page, re.S)
    assert [kind for kind, _ in alerts] == ["session_expired", "spider_failing"]
    assert "login session" in alerts[0][1] and "(carol) has expired" in alerts[0][1]
    assert "cbhours_live failed 3 times in a row" in alerts[1][1]
    assert MARKUP not in page


def test_import_and_verify_against_the_site(db_url: str, conn: psycopg.Connection[Any]) -> None:
    """The probe is real: a headless Chromium asks the simulated site whether the cookies are
    logged in, on import and on Verify."""
    with SimulatorServer(SimulatorState()) as sim:
        sim.state.site.add_account("alice", "pw-0123456789", followed_online=1, followed_total=2)
        config = load_config(
            {
                "ROOMWATCH_DATA_DIR": tempfile.mkdtemp(prefix="roomwatch-agent-page-"),
                "ROOMWATCH_CHATURBATE_URL": sim.base_url,
                "ROOMWATCH_BROWSER": "/usr/bin/chromium",
            }
        )
        sessionid = sim.state.site.open_session("alice")
        with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
            sign_in(client)
            refused = client.post(
                "/agent/sessions",
                data=_form(client, cookies=json.dumps(cookie_state("x" * 32)), verify="true"),
                files={},
            )
            assert refused.status_code == 422
            assert "cookies: these cookies are not logged in" in refused.text
            imported = client.post(
                "/agent/sessions",
                data=_form(client, cookies=json.dumps(cookie_state(sessionid)), verify="true"),
                files={},
            )
            assert imported.status_code == 200, imported.text
            assert "stored: account alice, valid" in imported.text
            assert sessionid not in imported.text
            (session_id,) = conn.execute("SELECT session_id FROM login_sessions").fetchone() or ()

            sim.state.site.expire_sessions(sessionid=sessionid)
            verified = client.post(f"/agent/sessions/{session_id}/verify", data=_form(client))
            assert verified.status_code == 200
            assert f"Session {session_id}: expired" in verified.text
            listed = _row(verified.text, f'data-session-id="{session_id}"')
            assert '<span class="health-expired">expired</span>' in listed
            assert [a.kind for a in read_alerts(conn, 3)] == ["session_expired"]
            assert 'data-kind="session_expired"' in verified.text
