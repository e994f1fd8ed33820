"""Connecting: a failure is one DatabaseError line, the same for blocking and asyncio callers."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from roomwatch.errors import DatabaseError, EmbeddedDatabaseError
from storage.database import connect, connect_async
from storage.embedded import EmbeddedPostgres


def _nowhere(tmp_path: Path) -> str:
    # A socket directory where no server listens.
    return (
        f"host={tmp_path} port=5999 user=nobody dbname=nothing password=s3cr3t-pass"
        " connect_timeout=2"
    )


def test_a_failed_connection_is_one_database_error_line(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        connect(_nowhere(tmp_path))
    message = str(caught.value)
    assert message.startswith("database: cannot connect (")
    assert "\n" not in message and "s3cr3t-pass" not in message


def test_the_asyncio_connection_fails_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        asyncio.run(connect_async(_nowhere(tmp_path), autocommit=True))
    message = str(caught.value)
    assert message.startswith("database: cannot connect (")
    assert "\n" not in message and "s3cr3t-pass" not in message


@pytest.mark.parametrize(
    "conninfo", ["postgresql://u:pa%ZZs3cr3t-pass@h/db", "postgresql://u:s3cr3t-pass@[h/db"]
)
def test_a_malformed_url_is_one_line_without_the_password(conninfo: str) -> None:
    # libpq's parse error quotes the whole string: it must not reach the user or a traceback.
    for attempt in (lambda: connect(conninfo), lambda: asyncio.run(connect_async(conninfo))):
        with pytest.raises(DatabaseError) as caught:
            attempt()
        assert str(caught.value) == (
            "database: not a valid connection URL (not shown: it may hold a password)"
        )
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def _long_data_dir() -> Path:
    """A data dir whose socket path would not fit: the server falls back to a /tmp folder."""
    base = Path(tempfile.mkdtemp(prefix="roomwatch-long-"))
    return base / ("d" * 90)


def _server_uid() -> int:
    return pwd.getpwnam("roomwatch-pg").pw_uid if os.geteuid() == 0 else os.geteuid()


@pytest.mark.parametrize("planted", ["open to all", "someone else's", "a symlink"])
def test_a_socket_folder_planted_in_tmp_is_refused(planted: str) -> None:
    data_dir = _long_data_dir()
    server = EmbeddedPostgres(data_dir)
    assert server.socket_dir.parent == Path("/tmp")
    target = Path(tempfile.mkdtemp(prefix="roomwatch-elsewhere-"))
    try:
        if planted == "a symlink":
            server.socket_dir.symlink_to(target)
        else:
            server.socket_dir.mkdir()
            if planted == "open to all":
                os.chmod(server.socket_dir, 0o777)  # noqa: S103 (the planted hazard)
                os.chown(server.socket_dir, _server_uid(), -1)
            else:
                os.chmod(server.socket_dir, 0o700)
                os.chown(server.socket_dir, 65534, -1)
        with pytest.raises(EmbeddedDatabaseError, match="socket folder"):
            server.start()
        assert not (server.cluster_dir / "PG_VERSION").exists()  # refused before anything ran
    finally:
        if server.socket_dir.is_symlink():
            server.socket_dir.unlink()
        else:
            shutil.rmtree(server.socket_dir, ignore_errors=True)
        target.rmdir()
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_the_last_user_stops_a_server_its_owner_left_to_it() -> None:
    # An agent owns the server, a CLI command uses it; the agent ends first (and leaves the
    # server to the CLI), then the CLI ends: nobody may be left with a running server.
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-owner-"))
    agent, cli = EmbeddedPostgres(data_dir), EmbeddedPostgres(data_dir)
    try:
        agent.start()
        cli.start()
        assert agent.owned and not cli.owned
        agent.stop()
        assert cli.is_running()
        cli.stop()
        assert not EmbeddedPostgres(data_dir).is_running(), "a server was left with no owner"
    finally:
        for server in (agent, cli):
            server.stop()
        leftover = EmbeddedPostgres(data_dir)
        if leftover.is_running():
            leftover.start()
            leftover.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_owner_leaves_the_server_to_a_process_still_using_it() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-owner-"))
    cli, agent = EmbeddedPostgres(data_dir), EmbeddedPostgres(data_dir)
    try:
        cli.start()  # a CLI command with no agent: it starts the server and owns it
        agent.start()  # an agent started meanwhile only uses it
        assert cli.owned and not agent.owned
        cli.stop()
        assert agent.is_running(), "the CLI stopped the server under a running agent"
        assert agent.supervise() is not None and agent.owned  # the agent took it over
        agent.stop()
        assert not agent.is_running()
    finally:
        for server in (cli, agent):
            server.stop()
        leftover = EmbeddedPostgres(data_dir)
        if leftover.is_running():
            leftover.start()
            leftover.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
