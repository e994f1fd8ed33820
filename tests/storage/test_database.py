"""Connecting: a failure is one DatabaseError line, the same for blocking and asyncio callers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roomwatch.errors import DatabaseError
from storage.database import connect, connect_async


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
