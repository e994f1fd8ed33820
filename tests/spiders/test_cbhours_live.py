"""The cbhours_live spider, whole crawls: trophy marking and rechecks (format: tests/formats)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

from tests.spiders.cbhours_support import (
    add_persons,
    api_requests,
    params,
    scalar,
)
from tests.support import CbhoursCrawls, crawl
from upstream_sim.cbhours.data import LiveOnline
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer


def _trophy_state(db: psycopg.Connection[Any], name: str) -> tuple[bool | None, bool]:
    """(has_cbhours_trophy, checked within the last hour)."""
    row = db.execute(
        "SELECT has_cbhours_trophy, cbhours_trophy_checked_at > now() - interval '1 hour' "
        "FROM persons WHERE username = %s",
        [name],
    ).fetchone()
    assert row is not None
    return row[0], bool(row[1])


def _asked(sim: SimulatorServer) -> list[str]:
    return [name for record in api_requests(sim) for name in params(record)["usernames"].split(",")]


def test_trophy_marking_and_rechecks(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours()
    batch1 = [f"m{i:02d}" for i in range(50)]  # all in the trophy set but m03
    batch2 = [f"m{i:02d}" for i in range(50, 55)]  # none: the answer is Error Code:300
    cbhours = sim.state.cbhours
    cbhours.add_trophy(*[name for name in batch1 if name != "m03"])
    star = cbhours.random_online("m00")
    cbhours.set_live("m00", star)
    add_persons(db, batch1 + batch2)
    add_persons(db, ["notfollowed"], following=False)
    add_persons(db, ["m98", "stale"], has_cbhours_trophy=False)
    db.execute("UPDATE persons SET cbhours_trophy_checked_at = now() - interval '1 day'")
    db.execute(
        "UPDATE persons SET cbhours_trophy_checked_at = now() - interval '8 days' "
        "WHERE username = 'stale'"
    )
    db.commit()

    job = crawl(config, db_url, "cbhours_live")
    assert job.status == "succeeded", job.error_message
    assert job.items == {"cbhours_live": 49, "cbhours_no_trophy": 7}
    # 50 names per request; a recently checked non-trophy person is not asked; a stale one is.
    # The two requests go out together: either may reach the simulator first.
    assert sorted(len(params(r)["usernames"].split(",")) for r in api_requests(sim)) == [6, 50]
    assert set(_asked(sim)) == {*batch1, *batch2, "stale"}

    assert scalar(db, "SELECT count(*) FROM cbhours_live_stats") == 49
    row = db.execute(
        "SELECT room_status, rank, grank, viewers, followers, current_show, room_subject, tags "
        "FROM cbhours_live_stats JOIN persons USING (person_id) WHERE username = 'm00'"
    ).fetchone()
    assert row == (
        "Online",
        star.rank,
        star.grank,
        star.viewers,
        star.followers,
        star.current_show,
        star.room_subject,
        [tag.lower() for tag in star.tags],
    )
    offline = db.execute(
        "SELECT room_status, rank, viewers, tags FROM cbhours_live_stats "
        "JOIN persons USING (person_id) WHERE username = 'm01'"
    ).fetchone()
    assert offline == ("Offline", None, None, None)
    assert scalar(db, "SELECT rank FROM v_person_current_state WHERE username = 'm00'") == (
        star.rank
    )
    assert _trophy_state(db, "m00") == (True, True)
    assert _trophy_state(db, "m03") == (False, True)  # omitted from the answer
    assert _trophy_state(db, "m52") == (False, True)  # Error Code:300
    assert _trophy_state(db, "stale") == (False, True)  # rechecked
    assert _trophy_state(db, "m98") == (False, False)  # not asked
    assert _trophy_state(db, "notfollowed") == (None, False)

    # The next poll asks only the trophy persons, until a recheck is due.
    sim.state.requests.clear()
    again = crawl(config, db_url, "cbhours_live")
    assert again.status == "succeeded", again.error_message
    assert sorted(_asked(sim)) == sorted(set(batch1) - {"m03"})
    db.execute(
        "UPDATE persons SET cbhours_trophy_checked_at = now() - interval '8 days' "
        "WHERE username = 'm03'"
    )
    db.commit()
    cbhours.add_trophy("m03")
    sim.state.requests.clear()
    third = crawl(config, db_url, "cbhours_live")
    assert third.status == "succeeded", third.error_message
    assert "m03" in _asked(sim)
    assert _trophy_state(db, "m03") == (True, True)


def test_a_malformed_answer_fails_the_job_and_keeps_the_other_batch(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours(CBHOURS_TARGETS="watch")
    names = [f"p{i:02d}" for i in range(60)]
    sim.state.cbhours.add_trophy(*names)
    for name in names:
        sim.state.cbhours.set_live(name, LiveOnline(rank=1, viewers=5))
    add_persons(db, names, watch=True, following=None)
    add_persons(db, ["followedonly"])  # not a target: only the watch list is configured
    sim.state.faults.set([FaultRule(prefix="/api.php", malformed="wrong_type", field="viewers")])

    job = crawl(config, db_url, "cbhours_live")
    assert job.status == "failed"
    assert job.error_message is not None
    assert "viewers: expected `int`, got `str`" in job.error_message
    assert job.error_message.startswith("get_live batch ")
    stored = scalar(db, "SELECT count(*) FROM cbhours_live_stats")
    failed_batch = int(job.error_message.split()[2].rstrip(":"))
    assert stored == (10 if failed_batch == 1 else 50)  # the good batch, all of it
    # Nothing from the bad answer: not even a trophy mark.
    assert scalar(db, "SELECT count(*) FROM persons WHERE has_cbhours_trophy") == stored
    assert "followedonly" not in _asked(sim)
    assert len(_asked(sim)) == 60


def test_usernames_argument_asks_exactly_those(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours()
    sim.state.cbhours.add_trophy("alice")
    add_persons(db, ["followed"])
    job = crawl(config, db_url, "cbhours_live", usernames="Alice, bob,")
    assert job.status == "succeeded", job.error_message
    assert _asked(sim) == ["alice", "bob"]
    assert job.items == {"cbhours_live": 1, "cbhours_no_trophy": 1}
    assert msgspec.json.decode(scalar(db, "SELECT raw::text FROM cbhours_live_stats")) == {
        "room_status": "Offline"
    }


def test_a_subject_with_nul_and_lone_surrogates_is_stored_with_its_batch(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    # Before: msgspec refused the lone surrogate, failing the answer (50 persons) and the job.
    config = cbhours(CBHOURS_TARGETS="watch")
    names = [f"p{i:02d}" for i in range(12)]
    sim.state.cbhours.add_trophy(*names)
    for name in names:
        sim.state.cbhours.set_live(name, LiveOnline(rank=1, viewers=5, room_subject="hello"))
    add_persons(db, names, watch=True, following=None)
    sim.state.faults.set(
        [FaultRule(prefix="/api.php", malformed="unstorable_text", field="room_subject")]
    )
    job = crawl(config, db_url, "cbhours_live")
    assert job.status == "succeeded", job.error_message
    assert scalar(db, "SELECT count(*) FROM cbhours_live_stats") == 12
    subjects = {row[0] for row in db.execute("SELECT room_subject FROM cbhours_live_stats")}
    assert subjects == {"hello", "he~sim-unstorable~llo".replace("~sim-unstorable~", " ")}
