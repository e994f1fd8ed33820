"""Follow state: observations per source, reconciliation with events, baseline, late writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from storage.follow_state import RoomObservation, reconcile, record_observations

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def _state(db: psycopg.Connection[Any], column: str) -> dict[str, bool | None]:
    return dict(db.execute(f"SELECT username, {column} FROM persons ORDER BY username").fetchall())


def _events(db: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "SELECT p.username, e.kind, e.source FROM follow_events e JOIN persons p USING (person_id)"
        " ORDER BY e.event_id"
    ).fetchall()
    return [tuple(row) for row in rows]


def test_first_check_is_a_baseline_then_changes_are_events(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO persons (username) VALUES ('known')")  # e.g. seen by the feed
    first = reconcile(db, "following", ["Ann", "bob"], checked_at=T0, source="followed_cams")
    assert (first.listed, first.added, first.removed, first.baseline) == (2, 0, 0, True)
    assert _state(db, "following") == {"ann": True, "bob": True, "known": None}
    assert _events(db) == []

    later = T0 + dt.timedelta(hours=1)
    second = reconcile(db, "following", ["ann", "known"], checked_at=later, source="html_import")
    assert (second.added, second.removed, second.baseline) == (1, 1, False)
    assert _state(db, "following") == {"ann": True, "bob": False, "known": True}
    assert sorted(_events(db)) == [
        ("bob", "unfollowed", "html_import"),
        ("known", "followed", "html_import"),
    ]
    # The other relation is independent, and a late (older) check changes nothing.
    assert _state(db, "follower") == {"ann": None, "bob": None, "known": None}
    stale = reconcile(db, "following", [], checked_at=T0, source="followed_cams")
    assert (stale.listed, stale.removed) == (0, 0)
    assert _state(db, "following")["ann"] is True
    polls = db.execute(
        "SELECT source, rows_seen FROM source_polls ORDER BY completed_at"
    ).fetchall()
    assert polls == [("followed_cams", 2), ("html_import:following", 2)]


def test_followers_use_their_own_columns_and_event_kinds(db: psycopg.Connection[Any]) -> None:
    reconcile(db, "follower", ["a", "b"], checked_at=T0, source="followers")
    reconcile(db, "follower", ["b", "c"], checked_at=T0 + dt.timedelta(1), source="followers")
    assert sorted(_events(db)) == [
        ("a", "lost_follower", "followers"),
        ("c", "new_follower", "followers"),
    ]
    assert _state(db, "follower") == {"a": False, "b": True, "c": True}


def test_observations_keep_what_the_list_showed(db: psycopg.Connection[Any]) -> None:
    rows = [
        RoomObservation(
            username="ann",
            online=True,
            current_show="public",
            viewers=12,
            subject="hi #x",
            followers=300,
            tags=["x"],
            gender="f",
            age=22,
        ),
        RoomObservation(username="bob", online=False, current_show="offline", viewers=0),
        RoomObservation(username="cid"),  # a followers page shows only the name
    ]
    assert record_observations(db, rows, source="followed_cams", observed_at=T0) == 3
    latest = db.execute(
        "SELECT p.username, l.online, l.viewers, l.followers, l.tags, l.gender,"
        " l.profile_at IS NULL"
        " FROM person_source_latest l JOIN persons p USING (person_id)"
        " WHERE l.source = 'followed_cams' ORDER BY 1"
    ).fetchall()
    assert latest == [
        ("ann", True, 12, 300, ["x"], "f", False),
        ("bob", False, 0, None, None, None, True),
    ]
    seen = dict(db.execute("SELECT username, last_seen_online_at FROM persons").fetchall())
    assert seen == {"ann": T0, "bob": None, "cid": None}
    # An older observation does not overwrite a newer one.
    older = [RoomObservation(username="ann", online=False, viewers=0)]
    record_observations(db, older, source="followed_cams", observed_at=T0 - dt.timedelta(1))
    row = db.execute(
        "SELECT online FROM person_source_latest JOIN persons USING (person_id) "
        "WHERE username = 'ann'"
    ).fetchone()
    assert row == (True,)
