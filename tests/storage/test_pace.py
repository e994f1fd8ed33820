"""The shared request pace (storage/pace.py): slots one interval apart, on any connection."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg

from storage.pace import CBHOURS, hold_off, take_slot

ROOT = Path(__file__).parents[2]


def _next_in(conn: psycopg.Connection[Any], name: str) -> float:
    (seconds,) = conn.execute(
        "SELECT extract(epoch FROM next_at - clock_timestamp())::float8 FROM request_paces "
        "WHERE name = %s",
        [name],
    ).fetchone()
    return float(seconds)


def test_a_slot_is_taken_when_due_and_the_next_is_an_interval_on(
    conn: psycopg.Connection[Any],
) -> None:
    # The migration made the CBHours row, due at once.
    assert take_slot(conn, CBHOURS, 10.0) == 0.0
    assert 9.0 < _next_in(conn, CBHOURS) <= 10.0
    # Not due: the time left, and nothing taken (asking again does not push the slot on).
    assert 9.0 < take_slot(conn, CBHOURS, 10.0) <= 10.0
    assert 9.0 < take_slot(conn, CBHOURS, 10.0) <= 10.0
    assert 9.0 < _next_in(conn, CBHOURS) <= 10.0
    conn.execute("UPDATE request_paces SET next_at = clock_timestamp() - interval '1 second'")
    assert take_slot(conn, CBHOURS, 10.0) == 0.0  # due again: taken, counted from now
    assert 9.0 < _next_in(conn, CBHOURS) <= 10.0
    # A pace not seen before starts now.
    assert take_slot(conn, "other", 5.0) == 0.0 and 4.0 < _next_in(conn, "other") <= 5.0


def test_hold_off_pushes_the_next_slot_and_never_shortens_a_wait(
    conn: psycopg.Connection[Any],
) -> None:
    take_slot(conn, CBHOURS, 1.0)
    hold_off(conn, CBHOURS, 30.0)  # a 429 asked everyone to wait
    assert 29.0 < take_slot(conn, CBHOURS, 1.0) <= 30.0
    hold_off(conn, CBHOURS, 2.0)  # shorter than what is promised: nothing changes
    assert 29.0 < take_slot(conn, CBHOURS, 1.0) <= 30.0


def test_a_slot_far_beyond_the_clock_is_not_waited_for(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE request_paces SET next_at = now() + interval '3 days'")
    assert take_slot(conn, CBHOURS, 1.0) == 0.0


_TAKER = """
import sys, time
import psycopg
from storage.pace import take_slot
conninfo, interval, takes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute("SELECT pg_advisory_lock_shared(42)")  # both start once the test lets go
    conn.execute("SELECT pg_advisory_unlock_shared(42)")
    for _ in range(takes):
        while (wait := take_slot(conn, "cbhours", interval)) > 0:
            time.sleep(wait)
"""


def test_the_pace_holds_across_processes(db_url: str, conn: psycopg.Connection[Any]) -> None:
    interval, takes = 0.05, 6
    # Every slot taken, as the database saw it: the next_at each take set.
    conn.execute("CREATE TABLE taken (next_at timestamptz NOT NULL)")
    conn.execute(
        "CREATE FUNCTION log_take() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO taken VALUES (NEW.next_at); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER log_take AFTER UPDATE ON request_paces FOR EACH ROW "
        "WHEN (NEW.next_at IS DISTINCT FROM OLD.next_at) EXECUTE FUNCTION log_take()"
    )
    conn.execute("SELECT pg_advisory_lock(42)")  # hold both takers at the start line
    takers = [
        subprocess.Popen(
            [sys.executable, "-c", _TAKER, db_url, str(interval), str(takes)],
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    while conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ).fetchone() != (2,):
        pass
    conn.execute("SELECT pg_advisory_unlock(42)")
    for taker in takers:
        assert taker.wait(60) == 0
    times = [
        float(at)
        for (at,) in conn.execute(
            "SELECT extract(epoch FROM next_at)::float8 FROM taken ORDER BY next_at"
        )
    ]
    assert len(times) == 2 * takes
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert min(gaps) >= interval, gaps


def test_a_zero_interval_never_waits(conn: psycopg.Connection[Any]) -> None:
    assert [take_slot(conn, CBHOURS, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
