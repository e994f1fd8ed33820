"""Crawl processes end with their supervisor, by process tree, and carry no secret in their
environment: real ``roomwatch crawl`` processes, real Chromium, the simulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from agent.runner import Supervision
from agent.worker import kill_orphan
from roomwatch.config import Config
from storage.embedded import EmbeddedPostgres
from storage.jobs import (
    Job,
    create_job,
    interrupt_abandoned,
    is_supervised,
    lock_job,
    start_job,
)
from storage.migrator import apply_migrations
from tests.processes import kill_all
from tests.spiders.follow_support import (
    MARKER_VARIABLE,
    log_in,
    marked_processes,
    wait_for,
    wait_for_first_page,
)
from tests.support import set_switches
from upstream_sim.server import SimulatorServer

TOKEN = "t" * 40 + "-api-token-that-no-crawl-may-see"


def _sigint_as_at_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _start_cli_crawl(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[subprocess.Popen[bytes], str, int]:
    """``roomwatch crawl followed_cams`` held in the browser by a long interstitial."""
    marker = uuid.uuid4().hex
    monkeypatch.setenv(MARKER_VARIABLE, marker)
    monkeypatch.setenv("ROOMWATCH_API_TOKEN", TOKEN)
    log_in(sim, crawl_env, db_url, online=2, offline=2)
    set_switches(sim, interstitial=True, interstitial_seconds=600)
    cli = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "crawl", "followed_cams"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Ctrl-C as at a terminal: a shell that runs the suite in the background without job
        # control ignores SIGINT for it, and an ignored signal stays ignored across exec.
        preexec_fn=_sigint_as_at_a_terminal,
    )
    wait_for_first_page(sim, marker)
    row = db.execute("SELECT job_id, pid FROM crawl_jobs ORDER BY job_id DESC LIMIT 1").fetchone()
    assert row is not None
    return cli, marker, int(row[0])


def _crawl_pid(db: psycopg.Connection[Any], job_id: int) -> int:
    row = db.execute("SELECT pid FROM crawl_jobs WHERE job_id = %s", [job_id]).fetchone()
    assert row is not None
    return int(row[0])


def test_sigkill_of_roomwatch_crawl_ends_its_crawl_and_chromium(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli, marker, job_id = _start_cli_crawl(crawl_env, db_url, db, sim, monkeypatch)
    try:
        assert _crawl_pid(db, job_id) != cli.pid  # the crawl is a process of its own
        cli.kill()  # the supervisor dies without a word
        cli.wait()
        wait_for(lambda: not marked_processes(marker), 30, "the crawl and its Chromium to end")
    finally:
        kill_all(marked_processes(marker))
    wait_for(
        lambda: (
            db.execute("SELECT status FROM crawl_jobs WHERE job_id = %s", [job_id]).fetchone()
            == ("interrupted",)
        ),
        10,
        "the job to be recorded interrupted",
    )


def test_a_crawl_process_environment_holds_no_roomwatch_secret(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli, marker, job_id = _start_cli_crawl(crawl_env, db_url, db, sim, monkeypatch)
    try:
        crawl_pid = _crawl_pid(db, job_id)
        with open(f"/proc/{crawl_pid}/environ", "rb") as handle:
            environ = dict(
                entry.split(b"=", 1) for entry in handle.read().split(b"\0") if b"=" in entry
            )
        assert environ  # read while it runs
        assert b"PATH" in environ
        assert not [name for name in environ if name.startswith(b"ROOMWATCH_")]
        started = [p for p in marked_processes(marker) if p.pid != cli.pid]
        assert any("chrom" in p.info["name"] for p in started)
        for process in started:  # the crawl, Playwright's driver, Chromium
            assert TOKEN not in process.environ().values()
    finally:
        cli.send_signal(signal.SIGINT)
        cli.wait(60)
        kill_all(marked_processes(marker))


_TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    # A grandchild in a session (process group) of its own, as Playwright starts Chromium.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def _tree(*extra_args: str) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _TREE, *extra_args],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert parent.stdout is not None
    grandchild = psutil.Process(int(parent.stdout.readline()))
    return parent, grandchild


def _gone(process: psutil.Process) -> bool:
    return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_a_crawl_that_dies_on_its_own_leaves_no_descendant_behind(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        job = create_job(conn, "affiliate", {}, "cli")
        assert lock_job(conn, job.job_id) and start_job(conn, job.job_id, os.getpid(), "-")
        parent, grandchild = _tree()
        try:
            supervision = Supervision(db_url, conn, job.job_id, parent)
            ended: list[Job] = []
            watcher = threading.Thread(target=lambda: ended.append(supervision.run(None)))
            watcher.start()
            wait_for(lambda: grandchild.pid in supervision.seen, 10, "the runner to see it")
            parent.kill()  # a crash: the grandchild is re-parented out of the crawl's tree
            watcher.join(30)
            assert ended and ended[0].status == "failed"
            wait_for(lambda: _gone(grandchild), 10, "the grandchild to end")
        finally:
            if grandchild.is_running():
                grandchild.kill()


def test_the_orphan_sweep_reaches_descendants_in_other_process_groups() -> None:
    parent, grandchild = _tree("crawler.crawl", "--job-id", "4242")
    try:
        kill_orphan(parent.pid, 4242)
        parent.wait(10)
        wait_for(lambda: _gone(grandchild), 10, "the grandchild to end")
    finally:
        if grandchild.is_running():
            grandchild.kill()
        if parent.poll() is None:
            parent.kill()


def test_the_supervisor_takes_its_job_lock_again_after_a_database_restart() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="roomwatch-restart-"))
    server = EmbeddedPostgres(data_dir)
    conninfo = server.start()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with psycopg.connect(conninfo) as setup:
            apply_migrations(setup)
        conn = psycopg.connect(conninfo, autocommit=True)
        job = create_job(conn, "affiliate", {}, "cli")
        assert lock_job(conn, job.job_id) and start_job(conn, job.job_id, os.getpid(), "-")
        supervision = Supervision(conninfo, conn, job.job_id, child)
        ended: list[Job] = []
        watcher = threading.Thread(target=lambda: ended.append(supervision.run(None)))
        watcher.start()
        server.stop()  # every connection goes, and the job lock with it
        server.start()

        def supervised_again() -> bool:
            with psycopg.connect(conninfo, autocommit=True) as check:
                return is_supervised(check, job.job_id)

        wait_for(supervised_again, 30, "the supervisor to take the job lock again")
        with psycopg.connect(conninfo, autocommit=True) as check:
            assert interrupt_abandoned(check) == []  # a sweep now finds it watched
        child.kill()
        watcher.join(30)
        assert ended and ended[0].status == "failed"
        assert ended[0].finish_reason == "crashed"  # seen to its end, not "interrupted"
    finally:
        if child.poll() is None:
            child.kill()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_crawl_process_never_starts_the_embedded_database(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "ROOMWATCH_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "crawler.crawl", "--job-id", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("roomwatch crawl: database: cannot connect")
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def test_a_crawl_given_up_by_a_sweep_ends_itself_and_its_chromium(
    crawl_env: Config,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The portable half of dying with the supervisor: the crawl's own watchdog."""
    cli, marker, job_id = _start_cli_crawl(crawl_env, db_url, db, sim, monkeypatch)
    try:
        cli.send_signal(signal.SIGSTOP)  # a hung supervisor: still its parent, still alive
        with psycopg.connect(db_url, autocommit=True) as sweeper:
            sweeper.execute(
                "UPDATE crawl_jobs SET status = 'interrupted', finished_at = now() "
                "WHERE job_id = %s",
                [job_id],
            )  # what another agent's sweep records
        wait_for(
            lambda: [p.pid for p in marked_processes(marker)] == [cli.pid],
            30,
            "the crawl and its Chromium to end",
        )
    finally:
        cli.kill()
        cli.wait()
        kill_all(marked_processes(marker))
