"""No password or cookie value ever reaches a log line, the terminal, the database or a file.

A form login, a cookie import and verifications run through the real CLI handlers with every
logger at DEBUG; then the known password, the imported cookie value and every session value the
simulated site issued are searched for in the captured log records (raw, before any redaction
filter), stdout and stderr, the ``login_sessions`` rows and the session files.
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import psycopg
import pytest

from agent import login_cli
from roomwatch.config import Config
from roomwatch.errors import SessionError
from sessions.store import sessions_dir
from tests.sessions.support import ACCOUNT, make_config
from tests.support import as_url
from upstream_sim.server import SimulatorServer

PASSWORD = "Pa55-phrase-that-must-never-be-logged"
IMPORTED_VALUE = "kn0wnsessi0nvalue0never0l0gged01"  # 32 characters, like the site's


def _run(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="roomwatch")
    login_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return login_cli.handle(parser.parse_args(argv), config)


def test_secrets_appear_nowhere(
    sim: SimulatorServer,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.state.site.add_account(ACCOUNT, PASSWORD, followed_online=1, followed_total=2)
    sim.state.site.open_session(ACCOUNT, sessionid=IMPORTED_VALUE)
    config = make_config(
        sim.base_url,
        tmp_path / "data",
        ROOMWATCH_DATABASE_URL=as_url(db_url),
        ROOMWATCH_LOG_LEVEL="DEBUG",
    )
    cookies = tmp_path / "cookies.json"
    cookies.write_text(
        '[{"domain": "127.0.0.1", "hostOnly": true, "name": "sessionid", '
        f'"value": "{IMPORTED_VALUE}", "path": "/", "httpOnly": true}}]'
    )

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(config, "login", "--username", ACCOUNT, "--password-stdin") == 0
    assert _run(config, "login", "--import", str(cookies)) == 0
    assert _run(config, "sessions", "list") == 0
    assert _run(config, "sessions", "list", "--json") == 0
    assert _run(config, "sessions", "verify", "1") == 0
    assert _run(config, "sessions", "verify", "2") == 0
    sim.state.site.expire_sessions()
    assert _run(config, "sessions", "verify", "2") == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-" + PASSWORD + "\n"))
    with pytest.raises(SessionError, match="login refused") as refused:
        _run(config, "login", "--username", ACCOUNT, "--password-stdin")

    assert {"sessions.login", "sessions.store", "sessions.probe"} <= {
        r.name for r in caplog.records
    }
    secrets = {PASSWORD, "wrong-" + PASSWORD, IMPORTED_VALUE, *sim.state.site.session_ids()}
    assert len(secrets) == 4  # the form login's own sessionid is among them
    output = capsys.readouterr()
    logged = [
        "\n".join(
            [record.getMessage(), str(record.args), str(record.exc_text), str(record.exc_info)]
        )
        for record in caplog.records
    ]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT row_to_json(s)::text FROM login_sessions s").fetchall()
        states = [bytes(s) for (s,) in conn.execute("SELECT state FROM login_sessions")]
    assert not sessions_dir(config).exists()  # the states are in the database, nowhere else
    assert "session #1 saved for alice (form, valid)" in output.out
    assert "session #2 saved for alice (import, valid)" in output.out
    assert len(rows) == 2 and len(states) == 2
    for secret in secrets:
        assert secret not in output.out and secret not in output.err
        assert not [line for line in logged if secret in line]
        assert not [row for (row,) in rows if secret in row]
        assert not [blob for blob in states if secret.encode() in blob]
        assert secret not in str(refused.value)
