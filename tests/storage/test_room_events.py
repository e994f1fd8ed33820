"""The Events API stream stored: events once, the position with them, and their effects on
follow state and persons."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest

from formats.events import decode_events
from roomwatch.config import DatabaseConfig, EventsConfig, load_config
from storage.follow_state import reconcile
from storage.maintenance import apply_retention
from storage.room_events import stream_position, write_room_events
from storage.targets import cbhours_live_targets, thumbnail_targets
from tests.factories import room_event

EXAMPLE = Path(__file__).parents[1] / "fixtures/doc_examples/events_DOCEXAMPLE_every_method.json"
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
Conn = psycopg.Connection[Any]


def _one(conn: Conn, query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _follower(conn: Conn, username: str) -> bool | None:
    return _one(conn, "SELECT follower FROM persons WHERE username = %s", username)  # type: ignore[no-any-return]


def _follow_events(conn: Conn) -> list[tuple[str, str, dt.datetime, str]]:
    rows = conn.execute(
        "SELECT p.username, e.kind, e.occurred_at, e.source FROM follow_events e "
        "JOIN persons p USING (person_id) ORDER BY e.occurred_at, e.event_id"
    ).fetchall()
    return [tuple(row) for row in rows]


def _example(store_message_text: bool = True) -> list[Any]:
    return decode_events(EXAMPLE.read_bytes(), store_message_text=store_message_text).events


def test_every_event_is_stored_once_and_the_position_with_them(conn: Conn) -> None:
    events = _example()
    first = write_room_events(conn, "owner", events, events[-1].event_id, job_id=None)
    again = write_room_events(conn, "owner", events, events[-1].event_id, job_id=None)
    assert (first.inserted, first.duplicates) == (13, 0)
    assert (again.inserted, again.duplicates) == (0, 13)
    assert _one(conn, "SELECT count(*) FROM room_events") == 13
    assert stream_position(conn, "owner") == events[-1].event_id
    tip = conn.execute(
        "SELECT username, tokens, is_anon, message, raw->'object'->'tip'->>'message' "
        "FROM room_events WHERE method = 'tip' ORDER BY event_id LIMIT 1"
    ).fetchone()
    assert tip == ("fan_two", 25, False, "for the song", "for the song")
    # Effects happened once: fan_one followed then unfollowed (two events, not four).
    assert [(name, kind) for name, kind, _, _ in _follow_events(conn)] == [
        ("fan_one", "new_follower"),
        ("fan_one", "lost_follower"),
    ]
    assert _follower(conn, "fan_one") is False


def test_the_position_never_moves_back(conn: Conn) -> None:
    late = room_event("tip", T0 + dt.timedelta(seconds=5), "a", tip={"tokens": 1})
    early = room_event("tip", T0, "b", tip={"tokens": 2})
    write_room_events(conn, "owner", [late], late.event_id)
    write_room_events(conn, "owner", [early], early.event_id)
    assert stream_position(conn, "owner") == late.event_id
    # Same milliseconds, later sequence: forward.
    next_one = room_event("tip", T0 + dt.timedelta(seconds=5), "c", seq=10, tip={"tokens": 3})
    write_room_events(conn, "owner", [next_one], next_one.event_id)
    assert stream_position(conn, "owner") == next_one.event_id
    assert _one(conn, "SELECT count(*) FROM room_events") == 3


def test_events_and_position_commit_together(conn: Conn) -> None:
    stored = room_event("userEnter", T0, "visitor")
    write_room_events(conn, "owner", [stored], stored.event_id)
    # A page the database refuses as a whole (a month that cannot have a partition: here the
    # partition's name is taken by a table that is not one) leaves the position where it was.
    failing = room_event("userEnter", dt.datetime(2031, 5, 1, tzinfo=dt.UTC), "visitor")
    conn.execute("CREATE TABLE room_events_p203105 (x int)")
    with pytest.raises(psycopg.Error):
        write_room_events(conn, "owner", [failing], failing.event_id)
    assert stream_position(conn, "owner") == stored.event_id
    assert _one(conn, "SELECT count(*) FROM room_events") == 1


def test_follow_and_unfollow_set_the_flag_and_write_follow_events(conn: Conn) -> None:
    follow = room_event("follow", T0, "Newfan")
    write_room_events(conn, "owner", [follow], follow.event_id, job_id=None)
    assert _follower(conn, "newfan") is True
    assert _one(conn, "SELECT s.follower FROM person_summary s") is True
    unfollow = room_event("unfollow", T0 + dt.timedelta(minutes=1), "newfan")
    write_room_events(conn, "owner", [unfollow], unfollow.event_id)
    assert _follower(conn, "newfan") is False
    assert _follow_events(conn) == [
        ("newfan", "new_follower", T0, "events_api"),
        ("newfan", "lost_follower", T0 + dt.timedelta(minutes=1), "events_api"),
    ]


def test_a_follow_of_a_known_follower_writes_no_event(conn: Conn) -> None:
    reconcile(conn, "follower", ["fan"], account="owner", checked_at=T0, source="followers")
    follow = room_event("follow", T0 + dt.timedelta(minutes=1), "fan")
    write_room_events(conn, "owner", [follow], follow.event_id)
    assert _follower(conn, "fan") is True
    assert _follow_events(conn) == []


def test_an_event_older_than_the_last_list_does_not_flip_it(conn: Conn) -> None:
    reconcile(conn, "follower", ["fan"], account="owner", checked_at=T0, source="followers")
    late_news = room_event("unfollow", T0 - dt.timedelta(minutes=5), "fan")
    result = write_room_events(conn, "owner", [late_news], late_news.event_id)
    assert result.inserted == 1  # stored all the same
    assert _follower(conn, "fan") is True
    assert _follow_events(conn) == []


def test_a_list_older_than_an_event_does_not_undo_it(conn: Conn) -> None:
    reconcile(conn, "follower", ["old"], account="owner", checked_at=T0, source="followers")
    # During the next crawl (it started at T1), "new" follows and "old" unfollows.
    t1 = T0 + dt.timedelta(hours=1)
    events = [
        room_event("follow", t1 + dt.timedelta(seconds=10), "new"),
        room_event("unfollow", t1 + dt.timedelta(seconds=20), "old"),
    ]
    write_room_events(conn, "owner", events, events[-1].event_id)
    # The crawl read its pages before either event: "old" listed, "new" not.
    changes = reconcile(
        conn, "follower", ["old"], account="owner", checked_at=t1, source="followers"
    )
    assert (changes.added, changes.removed) == (0, 0)
    assert (_follower(conn, "new"), _follower(conn, "old")) == (True, False)
    # A list read after the events concludes as usual.
    t2 = t1 + dt.timedelta(hours=1)
    changes = reconcile(
        conn, "follower", ["old"], account="owner", checked_at=t2, source="followers"
    )
    assert (changes.added, changes.removed) == (1, 1)
    assert (_follower(conn, "new"), _follower(conn, "old")) == (False, True)


def test_follow_then_unfollow_in_one_page_writes_both(conn: Conn) -> None:
    events = [
        room_event("follow", T0, "fickle"),
        room_event("unfollow", T0, "fickle", seq=1),
        room_event("follow", T0 + dt.timedelta(seconds=1), "fickle"),
    ]
    write_room_events(conn, "owner", events, events[-1].event_id)
    assert [kind for _, kind, _, _ in _follow_events(conn)] == [
        "new_follower",
        "lost_follower",
        "new_follower",
    ]
    assert _follower(conn, "fickle") is True


def test_persons_of_interest_are_created_visitors_and_chatters_are_not(conn: Conn) -> None:
    events = _example()
    write_room_events(conn, "owner", events, events[-1].event_id)
    persons = {row[0] for row in conn.execute("SELECT username FROM persons")}
    assert persons == {"fan_one", "fan_two", "quiet_fan", "buyer_one"}


def test_message_text_off_stores_no_text_anywhere(conn: Conn) -> None:
    events = _example(store_message_text=False)
    write_room_events(conn, "owner", events, events[-1].event_id)
    assert _one(conn, "SELECT count(*) FROM room_events WHERE message IS NOT NULL") == 0
    for text in ("hi there", "for the song", "a private word"):
        assert (
            _one(conn, "SELECT count(*) FROM room_events WHERE raw::text LIKE %s", f"%{text}%") == 0
        )
    # The events themselves are kept: their authors, tokens and times.
    assert _one(conn, "SELECT sum(tokens) FROM room_events WHERE method = 'tip'") == 26
    assert _one(conn, "SELECT to_user FROM room_events WHERE method = 'privateMessage'") == "owner"


def test_tippers_joiners_and_buyers_are_persons_of_interest(conn: Conn) -> None:
    events = _example()
    write_room_events(conn, "owner", events, events[-1].event_id)
    conn.execute("INSERT INTO persons (username, watch) VALUES ('watched', true)")
    assert cbhours_live_targets(conn, ["room"], 7) == ["buyer_one", "fan_two", "quiet_fan"]
    assert thumbnail_targets(conn, ["room", "watch"], 24) == [
        "buyer_one",
        "fan_two",
        "quiet_fan",
        "watched",
    ]
    # fan_one followed and then unfollowed: a follower no more, and no tipper.
    assert "fan_one" not in cbhours_live_targets(conn, ["room", "follower"], 7)
    assert cbhours_live_targets(conn, ["follower"], 7) == []


def test_the_defaults_ask_about_the_room_s_persons() -> None:
    config = load_config({})
    assert "room" in config.cbhours.targets
    assert "room" in config.images.persons


def test_retention_drops_whole_months_of_events(conn: Conn) -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    for days_ago in (70, 40, 1):
        event = room_event("chatMessage", now - dt.timedelta(days=days_ago), "chatty", message={})
        write_room_events(conn, "owner", [event], event.event_id)
    dropped = apply_retention(conn, DatabaseConfig(), now, events=EventsConfig(retention_days=50))
    # September's rows are all past 50 days (Oct 5); October's are not all.
    assert [name for name in dropped if name.startswith("room_events")] == ["room_events_p202609"]
    assert _one(conn, "SELECT count(*) FROM room_events") == 2


def test_an_odd_far_future_id_makes_one_partition_not_a_century(conn: Conn) -> None:
    events = [
        room_event("userEnter", T0, "a"),
        room_event("userEnter", dt.datetime(2126, 1, 1, tzinfo=dt.UTC), "b"),
        room_event("userEnter", T0 + dt.timedelta(days=40), "c"),
    ]
    write_room_events(conn, "owner", events, events[-1].event_id)
    partitions = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'room_events'::regclass ORDER BY 1"
    ).fetchall()
    assert [row[0] for row in partitions] == [
        "room_events_p202603",
        "room_events_p202604",
        "room_events_p212601",
    ]


def test_followers_an_event_added_during_a_crawl_do_not_count_as_a_mass_loss(conn: Conn) -> None:
    reconcile(conn, "follower", ["a"], account="owner", checked_at=T0, source="followers")
    t1 = T0 + dt.timedelta(hours=1)
    fans = [room_event("follow", t1 + dt.timedelta(seconds=i), f"fan{i}") for i in range(20)]
    write_room_events(conn, "owner", fans, fans[-1].event_id)
    # 20 of 21 absent from a list read before they followed: no loss at all, nothing held.
    changes = reconcile(conn, "follower", ["a"], account="owner", checked_at=t1, source="followers")
    assert (changes.added, changes.removed) == (0, 0)
    assert _one(conn, "SELECT count(*) FROM persons WHERE follower") == 21
