"""``roomwatch backup FILE`` / ``roomwatch restore FILE``: a database filled by the writers is
dumped by a real CLI process while ``roomwatch run`` owns the embedded server, restored into a
fresh data dir (a new embedded cluster) and read back the same; a restore never lands on data,
a damaged file or one from a newer roomwatch is refused and leaves the target empty, an older
one is migrated, and a password never reaches the output."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from agent.cli import main
from storage.embedded import EmbeddedPostgres
from storage.follow_state import reconcile
from storage.migrator import apply_migrations, bundled_migrations
from storage.room_events import write_room_events
from storage.watch_list import set_watch
from storage.writers import write_affiliate_poll
from tests.agent.support import run_environment
from tests.factories import room, room_event
from tests.support import as_url, free_port, roomwatch, wait_until_healthy, with_db

# Whole rows of the tables that hold persons, follow state and events (and what they rest on):
# a restored database must hold exactly these.
COMPARED = (
    "persons",
    "accounts",
    "account_persons",
    "person_source_latest",
    "affiliate_api_snapshots",
    "source_polls",
    "follow_events",
    "room_events",
    "room_event_streams",
    "schema_migrations",
)


def _contents(conninfo: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(conninfo) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table))
            ).fetchall()
            for table in COMPARED
        }


def _fill(conninfo: str) -> None:
    """Persons, follow state and its events, the owner's room events, as the crawls store them."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        t0 = now - dt.timedelta(hours=1)
        write_affiliate_poll(
            conn, [room("ann"), room("bob", num_followers=7)], observed_at=t0, complete=True
        )
        reconcile(
            conn,
            "following",
            ["ann", "bob"],
            account="owner",
            checked_at=t0,
            source="followed_cams",
        )
        later = t0 + dt.timedelta(minutes=30)
        reconcile(
            conn,
            "following",
            ["ann", "cat"],
            account="owner",
            checked_at=later,
            source="followed_cams",
        )
        events = [
            room_event("follow", later, "dan"),
            room_event("tip", later + dt.timedelta(seconds=5), "eve", tip={"tokens": 50}),
            room_event("unfollow", later + dt.timedelta(seconds=9), "dan", seq=1),
        ]
        write_room_events(conn, "owner", events, events[-1].event_id)
        set_watch(conn, ["ann"], True)


def _facts(conninfo: str) -> dict[str, Any]:
    """What a user reads: who is followed, who follows, the follow events, the events."""
    with psycopg.connect(conninfo) as conn:
        return {
            "following": conn.execute(
                "SELECT username FROM v_person_current_state WHERE following ORDER BY 1"
            ).fetchall(),
            "watch": conn.execute("SELECT username FROM persons WHERE watch").fetchall(),
            "follow_events": conn.execute(
                "SELECT p.username, e.kind, e.source FROM follow_events e JOIN persons p "
                "USING (person_id) ORDER BY e.occurred_at, p.username"
            ).fetchall(),
            "room_events": conn.execute(
                "SELECT method, username FROM room_events ORDER BY occurred_at"
            ).fetchall(),
            "bob_followers": conn.execute(
                "SELECT followers, followers_source FROM v_person_current_state "
                "WHERE username = 'bob'"
            ).fetchall(),
        }


def _refusal(stderr: str) -> str:
    """The one line the CLI printed for the error (log lines aside)."""
    lines = [line for line in stderr.splitlines() if line.startswith("roomwatch: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _postmaster(data_dir: Path) -> psutil.Process | None:
    try:
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split("\n")[0])
        return psutil.Process(pid)
    except (OSError, ValueError, psutil.NoSuchProcess):
        return None


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder of the test's own for data dirs and backups (not tmp_path: as root, the server
    user must be granted traversal, which pytest's private base dir does not allow)."""
    path = Path(tempfile.mkdtemp(prefix="roomwatch-backup-"))
    try:
        yield path
    finally:
        for data_dir in path.iterdir():
            server = _postmaster(data_dir)
            if server is not None:  # a server a failed test's process left behind
                server.send_signal(signal.SIGINT)
                psutil.wait_procs([server], timeout=30)
        shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = run_environment(data_dir, free_port())
    process = roomwatch(*args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_backup_taken_while_the_agent_runs_restores_into_a_new_data_dir(folder: Path) -> None:
    first, second = folder / "first", folder / "second"
    port = free_port()
    agent = roomwatch(
        "run",
        env=run_environment(first, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        assert wait_until_healthy(api, agent, 90), "the agent did not start"
        source = EmbeddedPostgres(first).conninfo  # the agent's server: we only connect
        _fill(source)
        before, facts = _contents(source), _facts(source)
        assert facts["following"] == [("ann",), ("cat",)]
        assert sorted(facts["follow_events"]) == [
            ("bob", "unfollowed", "followed_cams"),
            ("cat", "followed", "followed_cams"),
            ("dan", "lost_follower", "events_api"),
            ("dan", "new_follower", "events_api"),
        ]
        backup = folder / "roomwatch.dump"
        made = _cli("backup", str(backup), data_dir=first)
        assert made.returncode == 0, made.stderr
        # Written whole with the owner's permissions only, nothing left beside it.
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert sorted(p.name for p in folder.iterdir()) == ["first", "roomwatch.dump"]
        # The key is named (where it is, that it is kept apart), never its value.
        assert f"the sessions key: {first / 'secret.key'}" in made.stdout
        assert "not in the backup; save these separately" in made.stdout
        assert f"the thumbnails (images.store = files): {first / 'images'}/" in made.stdout
        assert "schema " + bundled_migrations()[-1].filename in made.stdout
        # The agent owns the server: the backup joined it and left it running.
        assert httpx.get(f"{api}/health", timeout=5).json() == {
            "status": "ok",
            "database": "ok",
        }
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)

    restored = _cli("restore", str(backup), data_dir=second)
    assert restored.returncode == 0, restored.stderr
    assert f"restored {backup} into embedded ({second / 'postgres'})" in restored.stdout
    assert f"the sessions key: {second / 'secret.key'}" in restored.stdout
    assert _postmaster(second) is None  # the restore's own server, stopped on its way out

    with EmbeddedPostgres(second) as target:
        assert _contents(target) == before
        assert _facts(target) == facts
    # Again onto the data now there: refused, and nothing changed.
    again = _cli("restore", str(backup), data_dir=second)
    assert again.returncode == 1
    assert "the database is not empty (it holds " in _refusal(again.stderr)
    assert "nothing was changed" in _refusal(again.stderr)
    with EmbeddedPostgres(second) as target:
        assert _contents(target) == before


# -- the database of database.url ------------------------------------------------------------


@pytest.fixture
def new_database(pg_server: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the tests' server (conninfo each), dropped at the end."""
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return with_db(pg_server, name)

    yield make
    with psycopg.connect(pg_server, autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli(conninfo, *argv)``: ``roomwatch ARGV`` in this process on the database ``conninfo``
    (as database.url); its status, stdout and stderr."""

    def run(conninfo: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("ROOMWATCH_DATABASE_URL", as_url(conninfo))
        status = main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def _objects(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public'"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def filled(new_database: Callable[[], str]) -> str:
    """A migrated database holding persons, follow state and events."""
    conninfo = new_database()
    with psycopg.connect(conninfo) as conn:
        apply_migrations(conn)
    _fill(conninfo)
    return conninfo


@pytest.fixture
def backup(filled: str, cli: Cli, tmp_path: Path) -> Path:
    """A backup of ``filled``, by ``roomwatch backup``."""
    path = tmp_path / "roomwatch.dump"
    assert cli(filled, "backup", str(path))[0] == 0
    return path


def test_a_damaged_file_is_refused_and_the_database_stays_empty(
    filled: str,
    backup: Path,
    new_database: Callable[[], str],
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = backup.read_bytes()
    target = new_database()
    refused = "is damaged, truncated or not a backup (could not read from input file: end of file)"
    cases = {
        # Cut inside the archive's table of contents: found before anything is done.
        "head": (whole[: len(whole) // 3], refused),
        # Cut inside the last data block: found by the restore, whose transaction rolls back.
        "tail": (
            whole[:-16],
            "could not be restored (could not read from input file: end of file); "
            "the database was left empty",
        ),
        "text": (
            b"SELECT 'no archive';\n",
            "is damaged, truncated or not a backup (did not find magic string in file header)",
        ),
        "empty": (b"", refused),
    }
    for name, (content, said) in cases.items():
        damaged = tmp_path / f"{name}.dump"
        damaged.write_bytes(content)
        status, out, err = cli(target, "restore", str(damaged))
        assert (status, out) == (1, ""), name
        assert _refusal(err) == f"roomwatch: {damaged} {said}"
        assert _objects(target) == 0, name
    # Bytes changed near the end (compressed data, or a block header, as the dump's layout
    # has it): pg_restore's own checks find them, and the one transaction leaves nothing.
    flipped = bytearray(whole)
    flipped[-100:-92] = bytes(b ^ 0xFF for b in flipped[-100:-92])
    damaged = tmp_path / "flipped.dump"
    damaged.write_bytes(flipped)
    status, out, err = cli(target, "restore", str(damaged))
    assert (status, out) == (1, "")
    assert _refusal(err).startswith(f"roomwatch: {damaged} ")
    assert " could not be restored (" in _refusal(err)
    assert _refusal(err).endswith("); the database was left empty")
    assert _objects(target) == 0
    status, _, err = cli(target, "restore", str(tmp_path / "none.dump"))
    assert (status, _refusal(err)) == (1, f"roomwatch: {tmp_path / 'none.dump'}: no such file")
    # Intact, it restores there (a path relative to the working folder is fine).
    monkeypatch.chdir(backup.parent)
    assert cli(target, "restore", backup.name)[0] == 0
    assert _contents(target) == _contents(filled)


def test_a_restore_onto_data_changes_nothing(
    filled: str, backup: Path, new_database: Callable[[], str], cli: Cli
) -> None:
    # Some other data, roomwatch's or not: never overwritten, never mixed.
    other = new_database()
    with psycopg.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    kept = _contents(filled)
    for target in (filled, other):
        before = _objects(target)
        status, out, err = cli(target, "restore", str(backup))
        assert (status, out) == (1, "")
        assert "the database is not empty" in _refusal(err)
        assert _objects(target) == before
    assert _contents(filled) == kept
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("mine",)]


def test_an_older_backup_is_migrated_and_a_newer_one_refused(
    new_database: Callable[[], str], cli: Cli, tmp_path: Path
) -> None:
    older = new_database()
    with psycopg.connect(older) as conn:
        apply_migrations(conn, bundled_migrations()[:-2])
        conn.execute("INSERT INTO persons (username) VALUES ('ann')")
    backup = tmp_path / "older.dump"
    status, out, _ = cli(older, "backup", str(backup))
    assert status == 0 and f"schema {bundled_migrations()[-3].filename}" in out
    target = new_database()
    status, out, _ = cli(target, "restore", str(backup))
    assert status == 0
    late = [m.filename for m in bundled_migrations()[-2:]]
    assert f"migrated since: {', '.join(late)}" in out
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT username FROM persons").fetchall() == [("ann",)]
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [v for (v,) in versions] == [m.version for m in bundled_migrations()]

    # A roomwatch newer than this one wrote it: refused before anything is touched.
    with psycopg.connect(older) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, filename, checksum) "
            "VALUES (9999, '9999_from_the_future.sql', 'x')"
        )
    newer = tmp_path / "newer.dump"
    assert cli(older, "backup", str(newer))[0] == 0
    empty = new_database()
    status, out, err = cli(empty, "restore", str(newer))
    assert (status, out) == (1, "")
    assert _refusal(err) == (
        f"roomwatch: {newer}: its migration 9999_from_the_future.sql is newer than this "
        "roomwatch; restore it with the roomwatch that made it (or a newer one)"
    )
    assert _objects(empty) == 0


def test_the_file_is_replaced_whole_and_errors_never_show_a_password(
    filled: str,
    cli: Cli,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backup = tmp_path / "roomwatch.dump"
    backup.write_text("yesterday's backup")
    os.chmod(backup, 0o644)
    passphrase = "a passphrase of the test's own " + uuid.uuid4().hex
    monkeypatch.setenv("ROOMWATCH_SECRET_KEY", passphrase)
    status, out, err = cli(filled, "backup", str(backup))
    assert status == 0
    # Where the key comes from, that it is kept apart: never the key itself.
    assert "the sessions key: secret_key (ROOMWATCH_SECRET_KEY) of your config" in out
    assert passphrase not in out + err
    assert backup.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["roomwatch.dump"]

    missing = tmp_path / "no" / "such.dump"
    status, _, err = cli(filled, "backup", str(missing))
    assert status == 1
    assert _refusal(err) == f"roomwatch: backup: the folder {missing.parent} does not exist"

    # A server that does not answer, behind a URL with a password: one line, no password.
    password = "pw-" + uuid.uuid4().hex
    monkeypatch.setenv(
        "ROOMWATCH_DATABASE_URL", f"postgresql://roomwatch:{password}@/roomwatch?host={tmp_path}"
    )
    for argv in (["backup", str(tmp_path / "x.dump")], ["restore", str(backup)]):
        status = main(argv)
        captured = capsys.readouterr()
        assert status == 1
        line = _refusal(captured.err)
        assert "cannot connect" in line or "pg_dump failed" in line, line
        assert password not in captured.err + captured.out
    assert os.listdir(tmp_path) == ["roomwatch.dump"]
