"""``person_broadcasts`` (migration 0017): the broadcasts of persons of interest, kept by the
triggers on ``person_summary`` from real Affiliate writes, one row per broadcast, not per poll."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import load_config
from storage.settings import sync_settings
from storage.writers import write_affiliate_poll
from tests.factories import room

Conn = psycopg.Connection[Any]
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _poll(conn: Conn, minutes: int, *online: str) -> None:
    """A complete Affiliate poll at T0 + ``minutes`` listing ``online``: the others go offline."""
    write_affiliate_poll(conn, [room(name) for name in online], observed_at=_at(minutes),
                         complete=True)  # fmt: skip


def _broadcasts(conn: Conn) -> list[tuple[str, dt.datetime, dt.datetime, bool]]:
    return [
        (name, started, last, announce)
        for name, started, last, announce in conn.execute(
            "SELECT p.username, b.started_at, b.last_online_at, b.announce "
            "FROM person_broadcasts b JOIN persons p USING (person_id) "
            "ORDER BY p.username, b.started_at"
        )
    ]


def _watch(conn: Conn, *names: str) -> None:
    conn.execute(
        "INSERT INTO persons (username, watch) SELECT unnest(%s::text[]), true "
        "ON CONFLICT (username) DO UPDATE SET watch = true",
        [list(names)],
    )


def test_polls_while_online_are_one_broadcast_a_gap_starts_another(conn: Conn) -> None:
    _watch(conn, "alice")
    for minute in (0, 1, 2):
        _poll(conn, minute, "alice", "bob")
    assert _broadcasts(conn) == [("alice", _at(0), _at(2), True)]  # bob: of no interest

    _poll(conn, 3, "bob")  # alice missing from one poll: offline, for the merge
    assert conn.execute(
        "SELECT online FROM person_summary WHERE username = 'alice'"
    ).fetchone() == (False,)
    _poll(conn, 5, "alice", "bob")  # back within the gap: the same broadcast
    assert _broadcasts(conn) == [("alice", _at(0), _at(5), True)]

    _poll(conn, 6, "bob")
    _poll(conn, 30, "alice")  # 25 minutes after she was last seen: a new broadcast
    _poll(conn, 31, "alice")
    assert _broadcasts(conn) == [
        ("alice", _at(0), _at(5), True),
        ("alice", _at(30), _at(31), True),
    ]


def test_sparse_sightings_without_an_offline_between_are_one_broadcast(conn: Conn) -> None:
    _watch(conn, "gina")

    def sighting(minutes: int) -> None:  # a source seen seldom that never says offline
        write_affiliate_poll(conn, [room("gina")], observed_at=_at(minutes))

    sighting(0)
    sighting(30)  # twice the gap, but nothing said she went offline: the same broadcast
    sighting(100)  # four gaps (an hour) exceeded: a new one
    assert _broadcasts(conn) == [
        ("gina", _at(0), _at(30), True),
        ("gina", _at(100), _at(100), True),
    ]
    ended = "SELECT ended_at FROM person_broadcasts ORDER BY started_at"
    assert conn.execute(ended).fetchall() == [(_at(30),), (None,)]  # over after its last sighting
    _poll(conn, 105)  # she is gone: the broadcast under way ends then
    assert conn.execute(ended).fetchall() == [(_at(30),), (_at(105),)]


def test_a_followed_person_counts_and_the_gap_is_a_setting(conn: Conn) -> None:
    _poll(conn, 0, "carol")
    conn.execute("UPDATE persons SET following = true WHERE username = 'carol'")
    # Followed while online: the broadcast under way is noted, not announced.
    assert _broadcasts(conn) == [("carol", _at(0), _at(0), False)]
    _poll(conn, 1)
    sync_settings(conn, load_config({"ROOMWATCH_ALERTS_LIVE_GAP_MINUTES": "60"}))
    _poll(conn, 40, "carol")  # 40 minutes later, within a 60-minute gap: the same broadcast
    assert _broadcasts(conn) == [("carol", _at(0), _at(40), False)]
    _poll(conn, 41)
    sync_settings(conn, load_config({}))  # back to 15 minutes
    _poll(conn, 60, "carol")
    assert _broadcasts(conn)[1:] == [("carol", _at(60), _at(60), True)]


def test_an_older_sighting_written_late_changes_nothing(conn: Conn) -> None:
    _watch(conn, "dave")
    _poll(conn, 10, "dave")
    # A batch observed earlier, stored after: neither a new broadcast nor a step back.
    write_affiliate_poll(conn, [room("dave")], observed_at=_at(2))
    assert _broadcasts(conn) == [("dave", _at(10), _at(10), True)]


def test_unwatched_and_offline_persons_have_no_broadcasts(conn: Conn) -> None:
    _watch(conn, "erin")  # watched, never seen online
    _poll(conn, 0, "frank")  # online, of no interest
    conn.execute("UPDATE persons SET watch = true WHERE username = 'frank'")
    _poll(conn, 1)  # frank offline now
    _poll(conn, 30)
    assert [row[0] for row in _broadcasts(conn)] == ["frank"]  # noted while online, once
