"""The cbhours_activity spider: whole crawls into the database (the format: tests/formats)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import psycopg

from formats.cbhours import (
    WINDOW_DAYS,
)
from tests.spiders.cbhours_support import (
    add_persons,
    api_requests,
    params,
    scalar,
)
from tests.support import CbhoursCrawls, crawl
from upstream_sim.faults import FaultRule
from upstream_sim.server import SimulatorServer

UTC = dt.UTC
AMY_ACTIVITY = "action=get_activity&username=amy"
"""Amy's activity answers only: her ``get_months`` and bea's requests race hers for the pace."""


def _requests(sim: SimulatorServer, action: str) -> list[dict[str, str]]:
    return [p for p in map(params, api_requests(sim)) if p["action"] == action]


def test_first_sight_backfills_then_reruns_add_nothing(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    tzo = -300
    config = cbhours(CBHOURS_TZO=str(tzo))
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    cbhours.add_trophy("alice")
    cbhours.seed_activity("alice", today - dt.timedelta(days=150), today - dt.timedelta(days=2))
    add_persons(db, ["alice", "gone"], has_cbhours_trophy=True)  # gone: no longer in CBHours
    add_persons(db, ["nobody"], has_cbhours_trophy=False)

    job = crawl(config, db_url, "cbhours_activity")
    assert job.status == "succeeded", job.error_message

    activity = _requests(sim, "get_activity")
    assert {p["username"] for p in activity} == {"alice", "gone"}
    assert {p["username"] for p in _requests(sim, "get_months")} == {"alice", "gone"}
    assert all(p["tzo"] == "-300" and p["include_details"] == "true" for p in activity)
    spans = [
        (dt.date.fromisoformat(p["start_date"]), dt.date.fromisoformat(p["end_date"]))
        for p in activity
        if p["username"] == "alice"
    ]
    assert all((last - first).days + 1 <= WINDOW_DAYS for first, last in spans)
    assert len(spans) >= 3  # the recent 60 days and at least two backfill windows

    # Every simulated segment is stored once, at its UTC time; daily totals per local day.
    expected = cbhours.segments("alice")
    stored = {
        row[0]
        for row in db.execute(
            "SELECT segment_at FROM cbhours_activity JOIN persons USING (person_id) "
            "WHERE username = 'alice'"
        )
    }
    assert stored == {s.at for s in expected}
    local_minutes = Counter((s.at + dt.timedelta(minutes=tzo)).date() for s in expected)
    daily = dict(
        db.execute(
            "SELECT day, online_minutes FROM cbhours_daily_activity "
            "JOIN persons USING (person_id) WHERE username = 'alice' AND tzo = -300"
        ).fetchall()
    )
    assert daily == {day: n * 3 for day, n in local_minutes.items()}
    assert job.items["cbhours_activity"] == len(expected)
    assert scalar(db, "SELECT has_cbhours_trophy FROM persons WHERE username = 'gone'") is False

    # Seen before: no backfill, and the same answers write nothing new.
    sim.state.requests.clear()
    again = crawl(config, db_url, "cbhours_activity")
    assert again.status == "succeeded", again.error_message
    assert [p["username"] for p in _requests(sim, "get_activity")] == ["alice"]
    assert _requests(sim, "get_months") == []
    assert again.items.get("cbhours_activity", 0) == 0
    assert scalar(db, "SELECT count(*) FROM cbhours_activity") == len(expected)


def test_a_malformed_answer_fails_the_job_and_keeps_the_others(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    config = cbhours()
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    for name in ("amy", "bea"):
        cbhours.add_trophy(name)
        cbhours.seed_activity(name, today - dt.timedelta(days=20), today, online_chance=1.0)
    add_persons(db, ["amy", "bea"], has_cbhours_trophy=True)
    sim.state.faults.set(
        [FaultRule(prefix="/api.php", query=AMY_ACTIVITY, malformed="wrong_type", field="rank")]
    )

    job = crawl(config, db_url, "cbhours_activity")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("get_activity amy ")
    assert "[0].rank: expected `str`, got `int`" in job.error_message
    per_person = dict(
        db.execute(
            "SELECT username, count(a.*) FROM persons LEFT JOIN cbhours_activity a "
            "USING (person_id) GROUP BY username"
        ).fetchall()
    )
    assert per_person["amy"] == 0
    assert per_person["bea"] == len(cbhours.segments("bea"))


def test_an_impossible_date_from_upstream_fails_the_job_naming_the_field(
    cbhours: CbhoursCrawls,
    db_url: str,
    db: psycopg.Connection[Any],
    sim: SimulatorServer,
) -> None:
    # Before: the ValueError escaped the callback as a spider error and the job succeeded.
    config = cbhours()
    today = dt.datetime.now(UTC).date()
    cbhours = sim.state.cbhours
    for name in ("amy", "bea"):
        cbhours.add_trophy(name)
        cbhours.seed_activity(name, today - dt.timedelta(days=20), today, online_chance=1.0)
    add_persons(db, ["amy", "bea"], has_cbhours_trophy=True)
    sim.state.faults.set(
        [
            FaultRule(
                prefix="/api.php",
                query=AMY_ACTIVITY,
                malformed="set_value",
                field="timestamp",
                value="2025-02-30T10:00",
            )
        ]
    )
    job = crawl(config, db_url, "cbhours_activity", usernames="amy,bea")
    assert job.status == "failed"
    assert job.error_message is not None
    assert job.error_message.startswith("get_activity amy ")
    assert re.search(r"details\.[0-9-]+\[0\]\.timestamp: .*'2025-02-30T10:00'", job.error_message)
    assert scalar(db, "SELECT count(*) FROM cbhours_activity") == len(cbhours.segments("bea"))
