"""``roomwatch watch add|remove|list``: the watch list from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.cli import main
from tests.support import as_url


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment ``roomwatch`` reads: this test's database and a data dir."""
    monkeypatch.setenv("ROOMWATCH_DATABASE_URL", as_url(db_url))
    monkeypatch.setenv("ROOMWATCH_DATA_DIR", str(tmp_path / "data"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["watch", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _state(db: psycopg.Connection[Any]) -> dict[str, tuple[bool, bool]]:
    """username -> (persons.watch, person_summary.watch)."""
    rows = db.execute(
        "SELECT p.username, p.watch, s.watch FROM persons p JOIN person_summary s USING "
        "(person_id) ORDER BY p.username"
    ).fetchall()
    db.commit()
    return {name: (watch, summary) for name, watch, summary in rows}


@pytest.mark.usefixtures("cli_env")
def test_add_list_remove(db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "list") == (0, "", "")
    db.execute("INSERT INTO persons (username) VALUES ('known')")
    db.commit()

    status, out, _ = _run(capsys, "add", "Known", "newbie", "newbie")
    assert (status, out) == (0, "watching: known, newbie\n")
    assert _state(db) == {"known": (True, True), "newbie": (True, True)}
    assert _run(capsys, "list") == (0, "known\nnewbie\n", "")

    status, out, _ = _run(capsys, "remove", "KNOWN", "ghost")
    assert (status, out) == (0, "not watching: ghost, known\n")
    assert _state(db) == {"known": (False, False), "newbie": (True, True)}  # ghost: not created
    assert _run(capsys, "list") == (0, "newbie\n", "")


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("argv", "status", "said"),
    [
        (["add", "fine", "not a name"], 1, "'not a name' is not a username"),
        (["add", "a"], 1, "'a' is not a username"),
        (["add"], 2, "watch add needs at least one USERNAME"),
        (["remove"], 2, "watch remove needs at least one USERNAME"),
        (["list", "someone"], 2, "watch list takes no usernames"),
    ],
)
def test_refusals(
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    status: int,
    said: str,
) -> None:
    got, out, err = _run(capsys, *argv)
    assert (got, out) == (status, "")
    assert said in err
    assert len(err.splitlines()) == 1
    assert _state(db) == {}  # one bad name refuses the whole command


@pytest.mark.usefixtures("cli_env")
def test_mute_and_unmute(db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "add", "star") == (0, "watching: star\n", "")
    assert _run(capsys, "mute", "STAR", "stranger") == (0, "muted: star, stranger\n", "")
    assert _run(capsys, "unmute", "star") == (0, "not muted: star\n", "")
    rows = db.execute("SELECT username, watch, alerts_muted FROM persons ORDER BY username")
    assert rows.fetchall() == [("star", True, False), ("stranger", False, True)]
    db.commit()
    assert _run(capsys, "list") == (0, "star\n", "")  # muting does not watch
    status, out, err = _run(capsys, "mute")
    assert (status, out) == (2, "") and "watch mute needs at least one USERNAME" in err
