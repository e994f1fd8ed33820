"""person_summary: the list's materialised rows always say what v_person_current_state says."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from formats.affiliate import decode_page
from storage.follow_durations import FOLLOW_DURATIONS
from storage.merge_rules import GROUPS, SOURCES, SUMMARY_COLUMNS
from storage.migrator import apply_migrations, bundled_migrations
from storage.person_list import PersonFilter, PersonSummary, list_persons
from storage.records import CbhoursLive
from storage.writers import deferred_summaries, write_affiliate_poll, write_cbhours_live
from tests.storage.merge_cases import CASES, observe
from upstream_sim.affiliate.feed import AffiliateFeed, FeedQuery

STORED = [c for c in PersonSummary.__struct_fields__ if c not in ("live_stale", *FOLLOW_DURATIONS)]
# Rows whose summary disagrees with the view, among those still valid (not due).
MISMATCHES = f"""
SELECT s.person_id FROM person_summary s
JOIN v_person_current_state v ON v.person_id = s.person_id
WHERE s.valid_until >= now()
  AND ({", ".join("s." + c for c in STORED)},
       s.live_newest_at < roomwatch_recent_since())
      IS DISTINCT FROM ({", ".join("v." + c for c in STORED)}, v.live_stale)
"""


def _person(conn: psycopg.Connection[Any], username: str) -> int:
    row = conn.execute(
        "INSERT INTO persons (username) VALUES (%s) RETURNING person_id", [username]
    ).fetchone()
    assert row is not None
    return int(row[0])


def _summary(conn: psycopg.Connection[Any], person_id: int, columns: str) -> tuple[Any, ...]:
    row = conn.execute(
        f"SELECT {columns} FROM person_summary WHERE person_id = %s", [person_id]
    ).fetchone()
    assert row is not None, "the person has no summary row"
    return tuple(row)


# person_tag_followers rows that are not (tag, follower key, person) of a summary, and the
# reverse; and summary rows whose sort keys are not their counts' (they are generated columns).
TAG_ROWS_MISMATCHES = """
(SELECT tag, followers_key, person_id FROM person_tag_followers
 EXCEPT ALL
 SELECT DISTINCT t, roomwatch_followers_key(followers), person_id
 FROM person_summary, unnest(tags) t)
UNION ALL
(SELECT DISTINCT t, roomwatch_followers_key(followers), person_id
 FROM person_summary, unnest(tags) t
 EXCEPT ALL
 SELECT tag, followers_key, person_id FROM person_tag_followers)
UNION ALL
SELECT 'summary keys', followers_key, person_id FROM person_summary
WHERE (followers_key, viewers_key)
      IS DISTINCT FROM (roomwatch_followers_key(followers), roomwatch_viewers_key(viewers))
"""


def _assert_agrees(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute(MISMATCHES).fetchall() == []
    assert conn.execute(TAG_ROWS_MISMATCHES).fetchall() == []
    missing = conn.execute(
        "SELECT count(*) FROM persons p WHERE NOT EXISTS "
        "(SELECT 1 FROM person_summary s WHERE s.person_id = p.person_id)"
    ).fetchone()
    assert missing == (0,)


@pytest.mark.parametrize("observations", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_summary_agrees_with_the_view_under_every_merge_rule(
    db: psycopg.Connection[Any], observations: dict[str, Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    person_id = _person(db, "someone")
    for source, (age, fields) in observations.items():
        observe(db, person_id, source, age, fields, now)
    _assert_agrees(db)
    assert _summary(db, person_id, "username") == ("someone",)


def test_person_columns_follow_their_updates(db: psycopg.Connection[Any]) -> None:
    person_id = _person(db, "fan")
    seen = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    db.execute(
        "UPDATE persons SET following = true, follower = false, watch = true,"
        " last_seen_online_at = %s WHERE person_id = %s",
        [seen, person_id],
    )
    assert _summary(db, person_id, "following, follower, watch, last_seen_online_at") == (
        True,
        False,
        True,
        seen,
    )
    _assert_agrees(db)
    db.execute("DELETE FROM persons WHERE person_id = %s", [person_id])
    assert db.execute("SELECT count(*) FROM person_summary").fetchone() == (0,)


def test_valid_until_is_when_a_newer_source_takes_over(db: psycopg.Connection[Any]) -> None:
    now = db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    infinite = "valid_until = 'infinity'"
    person_id = _person(db, "crossing")
    observe(db, person_id, "affiliate", dt.timedelta(minutes=4), {"viewers": 5}, now)
    observe(db, person_id, "cbhours", dt.timedelta(minutes=1), {"viewers": 3}, now)
    # affiliate wins while recent (6 more minutes); then the newer cbhours observation does.
    assert _summary(db, person_id, "valid_until") == (now + dt.timedelta(minutes=6),)
    # The only source stays the newest known when it leaves the window: only its staleness
    # changes, and that is computed when read.
    alone = _person(db, "alone")
    observe(db, alone, "affiliate", dt.timedelta(minutes=1), {"viewers": 5}, now)
    assert _summary(db, alone, infinite) == (True,)
    # An older observation of another source never takes over from the newest.
    older = _person(db, "older")
    observe(db, older, "affiliate", dt.timedelta(minutes=1), {"followers": 5}, now)
    observe(db, older, "cbhours", dt.timedelta(minutes=5), {"tags": ["x"]}, now)
    observe(db, older, "followed_cams", dt.timedelta(minutes=8), {"followers": 4}, now)
    assert _summary(db, older, infinite) == (True,)
    _assert_agrees(db)


def test_a_changed_recent_window_recomputes_every_summary(db: psycopg.Connection[Any]) -> None:
    now = db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    person_id = _person(db, "x")
    observe(db, person_id, "affiliate", dt.timedelta(minutes=8), {"viewers": 3}, now)
    observe(db, person_id, "cbhours", dt.timedelta(minutes=5), {"viewers": 4}, now)
    assert _summary(db, person_id, "valid_until") == (now + dt.timedelta(minutes=2),)
    db.execute("UPDATE roomwatch_settings SET value = '30 minutes' WHERE key = 'recent_interval'")
    assert _summary(db, person_id, "valid_until") == (now + dt.timedelta(minutes=22),)
    _assert_agrees(db)


def _list(db_url: str, filters: PersonFilter) -> list[str]:
    async def run() -> list[str]:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            return [p.username for p in await list_persons(conn, filters)]

    return asyncio.run(run())


def test_a_summary_past_its_validity_is_merged_live_until_refreshed(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        person_id = _person(conn, "fading")
        # Affiliate (online) is recent for two more seconds; cbhours (offline) for longer.
        almost = dt.timedelta(minutes=10) - dt.timedelta(seconds=2)
        observe(conn, person_id, "affiliate", almost, {"online": True, "viewers": 7}, now)
        observe(conn, person_id, "cbhours", dt.timedelta(minutes=1), {"online": False}, now)
        assert _list(db_url, PersonFilter(online=True)) == ["fading"]
        time.sleep(2.5)
        # Nothing rewrote the row, but the merge moved on: cbhours now decides.
        assert _summary(conn, person_id, "online") == (True,)
        assert _list(db_url, PersonFilter(online=True)) == []
        assert _list(db_url, PersonFilter(online=False)) == ["fading"]
        refreshed = conn.execute("SELECT roomwatch_refresh_due_summaries(100)").fetchone()
        assert refreshed == (1,)
        assert _summary(conn, person_id, "online, viewers") == (False, None)
        assert conn.execute("SELECT roomwatch_refresh_due_summaries(100)").fetchone() == (0,)
        _assert_agrees(conn)


def test_concurrent_writers_of_one_person_leave_the_newest_merge(db_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        person_id = _person(conn, "shared")
    first = psycopg.connect(db_url)
    second = psycopg.connect(db_url)
    try:
        observe(first, person_id, "affiliate", dt.timedelta(0), {"tags": ["a"]}, now)
        # The second writer blocks on the summary row the first holds, until it commits.
        done = threading.Event()

        def write_second() -> None:
            observe(second, person_id, "cbhours", dt.timedelta(0), {"followers": 42}, now)
            second.commit()
            done.set()

        thread = threading.Thread(target=write_second)
        thread.start()
        assert not done.wait(1.0), "the second writer did not wait for the first"
        first.commit()
        thread.join(10)
        assert done.is_set()
    finally:
        first.close()
        second.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert _summary(conn, person_id, "tags, followers") == (["a"], 42)
        _assert_agrees(conn)


def test_writes_notify_readers_that_cache_persons(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN roomwatch_persons")
        with psycopg.connect(db_url) as writer:
            person_id = _person(writer, "told")
            writer.execute("UPDATE persons SET watch = true WHERE person_id = %s", [person_id])
        notices = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in notices] == ["roomwatch_persons"]


def test_tag_rows_follow_tags_and_follower_buckets(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime.now(dt.UTC)
    person_id = _person(db, "tagged")
    observe(db, person_id, "affiliate", dt.timedelta(minutes=2), {"tags": ["a", "b"]}, now)
    observe(db, person_id, "cbhours", dt.timedelta(minutes=1), {"followers": 10}, now)
    rows = "SELECT tag, followers_key, ctid FROM person_tag_followers ORDER BY tag"
    keys = "SELECT roomwatch_followers_key(%s), roomwatch_followers_key(%s)"
    # 10 and 12 share a bucket (thresholds 10 and 13), 13 starts the next one.
    ten, twelve = db.execute(keys, [10, 12]).fetchone()  # type: ignore[misc]
    assert ten == twelve
    before = db.execute(rows).fetchall()
    assert [(tag, key) for tag, key, _ in before] == [("a", ten), ("b", ten)]

    def followers(count: int) -> None:
        db.execute(
            "UPDATE person_source_latest SET followers = %s, followers_at = now()"
            " WHERE person_id = %s AND source = 'cbhours'",
            [count, person_id],
        )

    followers(12)  # same bucket: the summary has the count, the tag rows are not touched
    assert _summary(db, person_id, "followers") == (12,)
    assert db.execute(rows).fetchall() == before
    followers(13)  # the next bucket: the rows get the new key in place
    (thirteen,) = db.execute("SELECT roomwatch_followers_key(13)").fetchone()  # type: ignore[misc]
    assert thirteen == ten + 1
    assert [(tag, key) for tag, key, _ in db.execute(rows)] == [("a", thirteen), ("b", thirteen)]
    db.execute(
        "UPDATE person_source_latest SET tags = '{b,c,c}' WHERE person_id = %s"
        " AND source = 'affiliate'",
        [person_id],
    )
    assert [(tag, key) for tag, key, _ in db.execute(rows)] == [("b", thirteen), ("c", thirteen)]
    _assert_agrees(db)
    db.execute("DELETE FROM persons WHERE person_id = %s", [person_id])
    assert db.execute(rows).fetchall() == []


# Every stored column of the rows still valid that differs from what the view says now (the
# sort keys, generated from the counts, are checked by TAG_ROWS_MISMATCHES).
_SUMMARY = ", ".join(SUMMARY_COLUMNS)
ROWS_UNLIKE_THE_VIEW = f"""
SELECT person_id FROM (
    (SELECT {_SUMMARY} FROM person_summary WHERE valid_until >= now()
     EXCEPT SELECT {_SUMMARY} FROM v_person_summary)
    UNION ALL
    (SELECT {", ".join("v." + c for c in SUMMARY_COLUMNS)}
     FROM v_person_summary v JOIN person_summary s USING (person_id)
     WHERE s.valid_until >= now()
     EXCEPT SELECT {_SUMMARY} FROM person_summary)
) unlike
"""


def _assert_rows_are_the_views(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute(ROWS_UNLIKE_THE_VIEW).fetchall() == []
    _assert_agrees(conn)


ORDER_OF = {field: group.order for group in GROUPS for field in group.fields}


def _maybe(rng: random.Random, value: Any) -> Any:
    return rng.choice([None, value])


@pytest.mark.parametrize("seed", range(5))
def test_a_new_persons_summary_is_the_views_without_merging(
    db: psycopg.Connection[Any], seed: int
) -> None:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    rows = [
        (
            f"new{seed}_{i}",
            _maybe(rng, rng.random() < 0.5),
            _maybe(rng, rng.random() < 0.5),
            rng.random() < 0.3,
            _maybe(rng, now - dt.timedelta(seconds=rng.randrange(100_000))),
        )
        for i in range(rng.randrange(1, 60))
    ]
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO persons (username, following, follower, watch, last_seen_online_at)"
            " SELECT * FROM unnest(%s::text[], %s::boolean[], %s::boolean[], %s::boolean[],"
            " %s::timestamptz[])",
            [[list(column) for column in zip(*rows, strict=True)]],
        )
    assert db.execute("SELECT count(*) FROM person_summary").fetchone() == (len(rows),)
    _assert_rows_are_the_views(db)
    # A new person whose source row is written by the same statement keeps the view's merge.
    db.execute(
        "WITH p AS (INSERT INTO persons (username) VALUES ('with_source') RETURNING person_id)"
        " INSERT INTO person_source_latest (person_id, source, viewers, online, live_at)"
        " SELECT person_id, 'affiliate', 7, true, now() FROM p"
    )
    row = db.execute(
        "SELECT viewers, online FROM person_summary JOIN persons USING (person_id)"
        " WHERE persons.username = 'with_source'"
    ).fetchone()
    assert row == (7, True)
    _assert_rows_are_the_views(db)


def _random_observations(
    db: psycopg.Connection[Any], rng: random.Random, ids: list[int], now: dt.datetime
) -> None:
    """Random latest rows of random sources (the merge cases' fields), persons columns too."""
    values: dict[str, Callable[[], Any]] = {
        "display_name": lambda: rng.choice(["A", "B", None]),
        "gender": lambda: rng.choice(["f", "m", None]),
        "viewers": lambda: rng.randrange(100),
        "online": lambda: rng.random() < 0.7,
        "followers": lambda: rng.randrange(1000),
        "tags": lambda: rng.sample(["a", "b", "c", "d"], rng.randrange(4)),
        "rank": lambda: rng.randrange(1, 50),
        "image_url": lambda: rng.choice(["u1", "u2"]),
    }
    for person_id in ids:
        for source in rng.sample(SOURCES, rng.randrange(len(SOURCES))):
            # Only fields of groups that consider the source (as the writers do).
            fields = {
                f: make()
                for f, make in values.items()
                if source in ORDER_OF[f] and rng.random() < 0.5
            }
            age = dt.timedelta(minutes=rng.choice([0, 1, 4, 9, 30, 200]))
            db.execute(
                "DELETE FROM person_source_latest WHERE person_id = %s AND source = %s",
                [person_id, source],
            )
            observe(db, person_id, source, age, fields, now)
        if rng.random() < 0.3:
            db.execute(
                "UPDATE persons SET following = %s, last_seen_online_at = %s WHERE person_id = %s",
                [rng.random() < 0.5, now - dt.timedelta(minutes=rng.randrange(60)), person_id],
            )


def _watch_then_fail(db: psycopg.Connection[Any], person_id: int) -> None:
    with db.transaction():
        db.execute("UPDATE persons SET watch = true WHERE person_id = %s", [person_id])
        raise ZeroDivisionError


@pytest.mark.parametrize("seed", range(4))
def test_deferred_summaries_are_merged_once_at_the_end_as_the_view_says(
    db: psycopg.Connection[Any], seed: int
) -> None:
    rng = random.Random(seed)
    now = db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    ids = [_person(db, f"p{seed}_{i}") for i in range(20)]
    _random_observations(db, rng, ids, now)
    _assert_rows_are_the_views(db)
    summaries = "SELECT s::text FROM person_summary s ORDER BY person_id"
    before = db.execute(summaries).fetchall()
    with deferred_summaries(db):
        _random_observations(db, rng, ids, now)
        # Inside the block nothing is merged yet...
        assert db.execute(summaries).fetchall() == before
        # ...and a rolled-back part leaves nothing to merge.
        with pytest.raises(ZeroDivisionError):
            _watch_then_fail(db, ids[0])
    _assert_rows_are_the_views(db)
    # After the block, writes are merged by their own statement again.
    db.execute("UPDATE persons SET watch = true WHERE person_id = %s", [ids[1]])
    assert _summary(db, ids[1], "watch") == (True,)
    _assert_rows_are_the_views(db)


@pytest.mark.parametrize("seed", range(3))
def test_affiliate_and_cbhours_polls_leave_the_views_merge_and_tag_rows(
    db: psycopg.Connection[Any], seed: int
) -> None:
    rng = random.Random(seed)
    feed = AffiliateFeed(300, seed=seed)
    now = db.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    for poll in range(4):
        rooms = decode_page(feed.page(FeedQuery(wm="test", limit=300)))[0]
        at = now - dt.timedelta(minutes=3 * (4 - poll))
        write_affiliate_poll(db, rooms, observed_at=at, complete=poll % 2 == 1)
        live = [
            CbhoursLive(
                username=room.username,
                room_status=rng.choice(["Online", "Offline"]),
                viewers=rng.randrange(100),
                followers=rng.randrange(1000),
                tags=rng.sample(["a", "b", "c"], rng.randrange(3)),
                rank=rng.randrange(1, 500),
                raw=b"{}",
            )
            for room in rng.sample(rooms, 100)
        ]
        write_cbhours_live(db, live, observed_at=at + dt.timedelta(seconds=30))
        ids = [r[0] for r in db.execute("SELECT person_id FROM persons ORDER BY random() LIMIT 30")]
        _random_observations(db, rng, ids, now)
        _assert_rows_are_the_views(db)
        feed.tick(rng, seconds=180, churn=0.1)


def test_writers_of_the_same_rooms_in_other_orders_take_turns(db_url: str) -> None:
    """Nodes polling one feed write the same persons at once, each in its own order."""
    feed = AffiliateFeed(2000, seed=5)
    rooms = decode_page(feed.page(FeedQuery(wm="test", limit=2000)))[0]
    now = dt.datetime.now(dt.UTC)
    errors: list[BaseException] = []
    for poll in range(3):
        barrier = threading.Barrier(2)

        def write(ordered: list[Any], at: dt.datetime, barrier: threading.Barrier) -> None:
            try:
                with psycopg.connect(db_url) as conn:
                    barrier.wait()
                    write_affiliate_poll(conn, ordered, observed_at=at)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        at = now - dt.timedelta(minutes=3 - poll)
        writers = [
            threading.Thread(target=write, args=(rooms, at, barrier)),
            threading.Thread(
                target=write, args=(rooms[::-1], at + dt.timedelta(seconds=1), barrier)
            ),
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(60)
        assert errors == []
        feed.tick(seconds=60, churn=0.05)
        rooms = decode_page(feed.page(FeedQuery(wm="test", limit=2000)))[0]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM persons").fetchone() == (2000 + 2 * 100,)
        _assert_rows_are_the_views(conn)


def test_migration_0027_keeps_every_last_sighting(empty_db: str) -> None:
    """Persons written under 0026 (the writers moved persons.last_seen_online_at) keep their last
    sighting through 0027, which merges it; an offline turn after it still reaches persons."""
    seen = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        apply_migrations(conn, [m for m in bundled_migrations() if m.version <= 26])
        conn.execute(
            "INSERT INTO persons (username, last_seen_online_at) VALUES"
            " ('online', %(seen)s), ('offline', %(before)s), ('never', NULL)",
            {"seen": seen, "before": seen - dt.timedelta(days=1)},
        )
        conn.execute(
            "INSERT INTO person_source_latest (person_id, source, online, live_at)"
            " SELECT person_id, 'affiliate', username = 'online', %s FROM persons"
            " WHERE username <> 'never'",
            [seen],
        )
        query = (
            "SELECT p.username, v.last_seen_online_at, s.last_seen_online_at"
            " FROM persons p JOIN v_person_current_state v USING (person_id)"
            " JOIN person_summary s USING (person_id) ORDER BY 1"
        )
        before = conn.execute(query).fetchall()
        assert apply_migrations(conn, bundled_migrations())[0].startswith("0027_")
        assert (
            conn.execute(query).fetchall()
            == before
            == [
                ("never", None, None),
                ("offline", seen - dt.timedelta(days=1), seen - dt.timedelta(days=1)),
                ("online", seen, seen),
            ]
        )
        # Seen online again (persons not written), then offline: persons keeps that sighting.
        again, later = seen + dt.timedelta(minutes=3), seen + dt.timedelta(minutes=5)
        kept = "SELECT last_seen_online_at FROM persons WHERE username = 'online'"
        conn.execute("UPDATE person_source_latest SET live_at = %s WHERE online", [again])
        assert conn.execute(kept).fetchone() == (seen,)
        assert conn.execute(query).fetchall()[2] == ("online", again, again)
        conn.execute("UPDATE person_source_latest SET online = false, live_at = %s", [later])
        assert conn.execute(kept).fetchone() == (again,)
        assert conn.execute(query).fetchall()[2] == ("online", again, again)
