"""Follow state: observations per source, reconciliation with events, baseline, late writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from roomwatch.config import FollowConfig
from roomwatch.errors import CountUnconfirmed, FollowLossHeld
from storage.follow_guard import last_check
from storage.follow_state import CountCheck, reconcile, record_observations
from storage.records import RoomObservation
from tests.support import store_stats_count

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
    first = reconcile(
        db, "following", ["Ann", "bob"], account="owner", checked_at=T0, source="followed_cams"
    )
    assert (first.listed, first.added, first.removed, first.baseline) == (2, 0, 0, True)
    assert _state(db, "following") == {"ann": True, "bob": True, "known": None}
    assert _events(db) == []

    later = T0 + dt.timedelta(hours=1)
    second = reconcile(
        db, "following", ["ann", "known"], account="owner", checked_at=later, source="html_import"
    )
    assert (second.added, second.removed, second.baseline) == (1, 1, False)
    assert _state(db, "following") == {"ann": True, "bob": False, "known": True}
    assert sorted(_events(db)) == [
        ("bob", "unfollowed", "html_import"),
        ("known", "followed", "html_import"),
    ]
    # The other relation is independent, and a late (older) check changes nothing.
    assert _state(db, "follower") == {"ann": None, "bob": None, "known": None}
    stale = reconcile(db, "following", [], account="owner", checked_at=T0, source="followed_cams")
    assert (stale.listed, stale.removed) == (0, 0)
    assert _state(db, "following")["ann"] is True
    polls = db.execute(
        "SELECT source, rows_seen FROM source_polls ORDER BY completed_at"
    ).fetchall()
    assert polls == [("followed_cams", 2), ("html_import:following", 2)]


def test_followers_use_their_own_columns_and_event_kinds(db: psycopg.Connection[Any]) -> None:
    reconcile(db, "follower", ["a", "b"], account="owner", checked_at=T0, source="followers")
    reconcile(
        db,
        "follower",
        ["b", "c"],
        account="owner",
        checked_at=T0 + dt.timedelta(1),
        source="followers",
    )
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


@pytest.mark.parametrize("relation", ["following", "follower"])
def test_a_mass_loss_is_held_until_confirmed(relation: str, db: psycopg.Connection[Any]) -> None:
    names = [f"p{i:03d}" for i in range(100)]
    source = "followers" if relation == "follower" else "followed_cams"
    reconcile(db, relation, names, account="owner", checked_at=T0, source=source)  # type: ignore[arg-type]
    later = T0 + dt.timedelta(hours=1)
    kept = names[:20]  # 80 of 100 gone: a broken page, not 80 people leaving
    with pytest.raises(FollowLossHeld) as held:
        reconcile(db, relation, kept, account="owner", checked_at=later, source=source)  # type: ignore[arg-type]
    assert str(held.value).startswith(f"{'followers' if relation == 'follower' else 'followed'}")
    assert "80 of 100 would be marked" in str(held.value)
    assert "held, not concluded" in str(held.value)
    assert set(_state(db, relation).values()) == {True}  # nothing concluded
    assert _events(db) == []
    assert last_check(db, relation, "owner")[1] == T0  # the held check is not a check

    confirmed = reconcile(
        db,
        relation,
        kept,
        account="owner",
        checked_at=later,
        source=source,
        confirm_loss=True,  # type: ignore[arg-type]
    )
    assert confirmed.removed == 80
    assert list(_state(db, relation).values()).count(False) == 80


def test_the_guard_allows_a_handful_and_a_share(db: psycopg.Connection[Any]) -> None:
    def check(listed: list[str], hours: int, limits: FollowConfig | None = None) -> int:
        at = T0 + dt.timedelta(hours=hours)
        return reconcile(
            db,
            "follower",
            listed,
            account="owner",
            checked_at=at,
            source="followers",
            limits=limits,
        ).removed

    reconcile(
        db,
        "follower",
        [f"p{i}" for i in range(20)],
        account="owner",
        checked_at=T0,
        source="followers",
    )
    assert check([f"p{i}" for i in range(15)], 1) == 5  # 25 %, but only a handful (5)
    with pytest.raises(FollowLossHeld, match="6 of 15"):
        check([f"p{i}" for i in range(9)], 2)
    assert check([f"p{i}" for i in range(9)], 3, FollowConfig(max_loss_share=1.0)) == 6
    # A large list may lose its share: 20 of 100 is allowed, 21 is not.
    hour_4 = T0 + dt.timedelta(hours=4)
    qs = [f"q{i}" for i in range(100)]
    reconcile(
        db,
        "follower",
        qs,
        account="owner",
        checked_at=hour_4,
        source="followers",
        confirm_loss=True,
    )
    assert check([f"q{i}" for i in range(80)], 5) == 20
    with pytest.raises(FollowLossHeld, match="21 of 80"):
        check([f"q{i}" for i in range(59)], 6)


def test_a_check_stamped_in_the_future_is_clamped_to_the_database_clock(
    db: psycopg.Connection[Any],
) -> None:
    # A crawl machine whose clock runs days ahead must not make its check win over every
    # later, correctly stamped one: the time is clamped to the database's now().
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    reconcile(
        db, "following", ["ann", "bob"], account="owner", checked_at=future, source="followed_cams"
    )
    record_observations(
        db,
        [RoomObservation(username="ann", viewers=3)],
        source="followed_cams",
        observed_at=future,
    )
    (now,) = db.execute("SELECT now()").fetchone() or (None,)
    stored = db.execute(
        "SELECT max(following_checked_at) FROM persons UNION ALL"
        " SELECT max(completed_at) FROM source_polls"
    ).fetchall()
    assert all(row[0] is not None and row[0] <= now for row in stored)
    later = reconcile(
        db, "following", ["ann"], account="owner", checked_at=now, source="followed_cams"
    )
    assert later.removed == 1  # the correctly stamped check that follows is not "stale"


def _known(db: psycopg.Connection[Any]) -> dict[str, bool | None]:
    """The follower state of those it is known of (the owner's person is not one)."""
    return {name: state for name, state in _state(db, "follower").items() if state is not None}


def _counted(**changes: Any) -> CountCheck:
    return CountCheck(**{"account": "owner", "tolerance": 1, "max_age_minutes": 10, **changes})


def test_a_list_without_a_count_needs_a_matching_recent_stats_count(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    fans = ["a", "b", "c", "d"]
    reconcile(conn, "follower", ["a", "old"], account="owner", checked_at=T0, source="followers")
    now = dt.datetime.now(dt.UTC)

    with pytest.raises(CountUnconfirmed) as none:
        reconcile(
            conn,
            "follower",
            fans,
            account="owner",
            checked_at=now,
            source="followers",
            count_check=_counted(),
        )
    assert str(none.value) == (
        "the followers page shows no count, and no Stats API follower count of owner was "
        "observed in the last 10 minutes: set stats.url, or run room_stats"
    )
    store_stats_count(db_url, "owner", 4, age=dt.timedelta(minutes=11))  # too old
    store_stats_count(db_url, "someone_else", 4)  # another account's
    with pytest.raises(CountUnconfirmed, match="no Stats API follower count of owner"):
        reconcile(
            conn,
            "follower",
            fans,
            account="owner",
            checked_at=now,
            source="followers",
            count_check=_counted(),
        )

    store_stats_count(db_url, "owner", 7, age=dt.timedelta(minutes=9))
    with pytest.raises(CountUnconfirmed) as wrong:
        reconcile(
            conn,
            "follower",
            fans,
            account="owner",
            checked_at=now,
            source="followers",
            count_check=_counted(),
        )
    assert str(wrong.value).startswith("the followers page shows no count and the Stats API's ")
    assert str(wrong.value).endswith(") does not match the 4 names read (tolerance 1)")
    assert "count (7, observed at 20" in str(wrong.value)
    assert _known(conn) == {"a": True, "old": True}  # nothing changed
    assert _events(conn) == []

    store_stats_count(db_url, "owner", 5, age=dt.timedelta(minutes=1))  # the newest wins
    check = _counted(account="Owner")  # as the session names the account
    changes = reconcile(
        conn,
        "follower",
        fans,
        account="owner",
        checked_at=now,
        source="followers",
        count_check=check,
    )
    assert (changes.added, changes.removed) == (3, 1)
    assert _known(conn) == dict.fromkeys(fans, True) | {"old": False}


def test_a_saved_page_is_checked_against_the_count_of_its_own_time(
    db_url: str, conn: psycopg.Connection[Any]
) -> None:
    store_stats_count(db_url, "owner", 2, age=dt.timedelta(hours=2, minutes=3))
    store_stats_count(db_url, "owner", 40)  # now: the list has grown since
    saved = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    reconcile(
        conn,
        "follower",
        ["a", "b"],
        account="owner",
        checked_at=saved,
        source="html_import",
        count_check=_counted(tolerance=0, at=saved),
    )
    assert _known(conn) == {"a": True, "b": True}
    earlier = saved - dt.timedelta(hours=1)
    with pytest.raises(CountUnconfirmed) as caught:
        reconcile(
            conn,
            "follower",
            ["a"],
            account="owner",
            checked_at=earlier,
            source="html_import",
            count_check=_counted(at=earlier),
        )
    assert "observed within 10 minutes of 20" in str(caught.value)
    assert str(caught.value).endswith(
        ", when the pages were saved: set stats.url, or run room_stats"
    )


def test_each_account_has_its_own_follow_state(db: psycopg.Connection[Any]) -> None:
    reconcile(
        db, "following", ["ann", "bob"], account="alice", checked_at=T0, source="followed_cams"
    )
    reconcile(db, "following", ["bob"], account="Carol", checked_at=T0, source="followed_cams")
    later = T0 + dt.timedelta(hours=1)
    # Carol's second check is hers: Alice's state and her baseline are untouched by it.
    changes = reconcile(
        db, "following", ["ann"], account="carol", checked_at=later, source="followed_cams"
    )
    assert (changes.added, changes.removed, changes.baseline) == (1, 1, False)
    per_account = db.execute(
        "SELECT a.account, p.username, a.following FROM account_persons a "
        "JOIN persons p USING (person_id) ORDER BY 1, 2"
    ).fetchall()
    assert per_account == [
        ("alice", "ann", True),
        ("alice", "bob", True),
        ("carol", "ann", True),
        ("carol", "bob", False),
    ]
    # persons.following is what any account knows: Alice still follows bob.
    assert _state(db, "following") == {"ann": True, "bob": True}
    events = db.execute(
        "SELECT e.account, p.username, e.kind FROM follow_events e "
        "JOIN persons p USING (person_id) ORDER BY e.event_id"
    ).fetchall()
    assert events == [("carol", "ann", "followed"), ("carol", "bob", "unfollowed")]
    assert last_check(db, "following", "alice")[1] == T0
    assert last_check(db, "following", "carol")[1] == later
    # Alice drops bob: nobody follows him now.
    reconcile(db, "following", ["ann"], account="alice", checked_at=later, source="followed_cams")
    assert _state(db, "following") == {"ann": True, "bob": False}
