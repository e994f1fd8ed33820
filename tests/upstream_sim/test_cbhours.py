"""The simulated CBHours API over real HTTP: doc-example shapes, limits, rate limit, faults."""

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from tests.upstream_sim.support import SAMPLES
from upstream_sim import FaultRule, SimulatorServer, SimulatorState
from upstream_sim.cbhours.data import CbhoursState, LiveOffline, LiveOnline, Segment
from upstream_sim.cbhours.limit import RateLimit
from upstream_sim.cbhours.routes import daily_total

INTERVAL = 0.1
"""The limiter's interval in most tests: short, so pacing costs little, but always on."""
SEED = 3
TROPHY = ("model1", "model2", "model3")
MODEL1 = LiveOnline(
    gender="Female",
    rank=123,
    grank=45,
    viewers=1024,
    followers=54321,
    current_show="public",
    room_subject="GOAL: [304 tokens remaining] helloo lets have fun #new #ebony #pvt",
    tags=("new", "ebony", "pvt"),
    is_new=False,
)
ACTIVITY = {"action": "get_activity", "domain": "cbhours", "username": "model1", "tzo": "0"}
SUMMER = {"start_date": "2025-07-01", "end_date": "2025-07-31"}
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DAILY = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (Mon|Tue|Wed|Thu|Fri|Sat|Sun) - (\d{2}) Hours (\d{2}) Minutes"
)


def doc_example(name: str) -> Any:
    """One saved CBHours doc example (documentation, not captured data)."""
    return msgspec.json.decode(
        (SAMPLES / "doc_examples" / f"cbhours_DOCEXAMPLE_{name}.json").read_bytes()
    )


class PacedApi:
    """A client that keeps the limiter's interval between its requests, like a polite crawler."""

    def __init__(self, client: httpx.Client, url: str, interval: float) -> None:
        self.client, self.url, self.interval = client, url, interval
        self._last = float("-inf")

    def get(self, **params: str) -> httpx.Response:
        wait = self._last + self.interval + 0.005 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        response = self.client.get(self.url, params=params)
        # Paced from the answer, not the send: the server admitted the request before answering,
        # so on its clock too the next one comes at least an interval later, however long the
        # request took to arrive on a loaded machine (paced from the send, it could be refused).
        self._last = time.monotonic()
        return response


@pytest.fixture(scope="module")
def _server() -> Iterator[SimulatorServer]:
    cbhours = CbhoursState(seed=SEED, rate_limit=RateLimit(interval=INTERVAL))
    with SimulatorServer(SimulatorState(cbhours=cbhours)) as server:
        yield server


@pytest.fixture
def sim(_server: SimulatorServer) -> SimulatorServer:
    """Trophy models 1-3: model1 Online as in the doc example with Jun-Aug 2025 history."""
    state = _server.state.cbhours
    state.reset(SEED, trophy=TROPHY)
    state.rate_limit.configure(enabled=True, interval=INTERVAL, tolerance=0.02)
    state.set_live("model1", MODEL1)
    state.set_live("model2", LiveOffline())
    state.seed_activity("model1", date(2025, 6, 1), date(2025, 8, 31), online_chance=0.9)
    _server.state.faults.clear()
    _server.state.requests.clear()
    return _server


@pytest.fixture
def api(sim: SimulatorServer) -> Iterator[PacedApi]:
    with httpx.Client(timeout=10) as client:
        yield PacedApi(client, sim.cbhours_url, INTERVAL)


def test_get_live_is_the_doc_example(api: PacedApi) -> None:
    reply = api.get(action="get_live", usernames="model1,model2")
    assert reply.status_code == 200
    assert reply.json() == doc_example("get_live")
    assert list(reply.json()["data"]["model1"]) == list(doc_example("get_live")["data"]["model1"])


def test_get_live_omits_names_outside_the_trophy_set(api: PacedApi) -> None:
    reply = api.get(action="get_live", usernames="model3,stranger,MODEL1, ,model3")
    assert list(reply.json()["data"]) == ["model3", "model1"]
    assert reply.json()["data"]["model3"] == {"room_status": "Offline"}


def test_get_live_without_any_trophy_name_is_error_300(api: PacedApi) -> None:
    reply = api.get(action="get_live", usernames="stranger,other")
    assert reply.status_code == 200
    assert reply.json() == doc_example("error_code300")


def test_get_live_takes_at_most_50_names(api: PacedApi) -> None:
    names = [f"name{i}" for i in range(49)]
    assert api.get(action="get_live", usernames=",".join([*names, "model1"])).status_code == 200
    refused = api.get(action="get_live", usernames=",".join([*names, "model1", "model2"]))
    assert refused.status_code == 400
    assert refused.json()["status"] == "error"
    assert refused.json()["parameter"] == "usernames"
    assert api.get(action="get_live").json()["parameter"] == "usernames"


def test_get_activity_keys_and_value_types_match_the_doc_example(api: PacedApi) -> None:
    sample = doc_example("get_activity_include_details")
    body = api.get(**ACTIVITY, **SUMMER, include_details="true").json()
    assert list(body) == list(sample)
    assert body["status"] is True and body["serverStatus"] is True and body["model"] == "model1"
    assert re.fullmatch(r"0\.\d+ seconds", body["response_time"])
    assert list(body["total_time"]) == list(sample["total_time"])
    assert list(body["activity"]) == list(body["details"]) == sorted(body["details"])
    sample_keys = list(sample["details"]["2025-08-12"][0])
    minutes = 0
    for day, segments in body["details"].items():
        match = _DAILY.fullmatch(body["activity"][day])
        assert match and match[1] == day
        assert int(match[3]) * 60 + int(match[4]) == 3 * len(segments)
        minutes += 3 * len(segments)
        for segment in segments:
            assert list(segment) == sample_keys
            assert all(segment[key].isdigit() for key in ("rank", "grank", "followers", "viewers"))
            assert segment["gender"] == "f" and segment["type"].startswith("_")
            assert _TIMESTAMP.fullmatch(segment["timestamp"]) and segment["timestamp"][:10] == day
            assert int(segment["timestamp"][-2:]) % 3 == 0
    assert body["total_time"] == {"hours": minutes // 60, "minutes": minutes % 60}
    assert minutes > 0


def _doc_day(cbhours: CbhoursState) -> None:
    """The doc example's day for ``model_name``: 28 samples from 2025-08-12 22:36 UTC."""
    start = datetime(2025, 8, 12, 22, 36, tzinfo=UTC)
    samples = [
        Segment(
            at=start + timedelta(minutes=3 * i), rank=5720, grank=4012, followers=64829, viewers=0
        )
        for i in range(28)
    ]
    cbhours.set_activity("model_name", samples)
    cbhours.add_trophy("model_name")


def test_hand_made_history_gives_the_doc_example_totals(
    sim: SimulatorServer, api: PacedApi
) -> None:
    _doc_day(sim.state.cbhours)
    sample = doc_example("get_activity_include_details")
    query = {**ACTIVITY, "username": "Model_Name", "include_details": "true"}
    body = api.get(**query, start_date="2025-08-12", end_date="2025-08-13").json()
    assert body["model"] == "model_name"
    assert body["activity"] == sample["activity"]
    assert body["total_time"] == sample["total_time"]
    assert body["details"]["2025-08-12"][0] == sample["details"]["2025-08-12"][0]
    assert daily_total(date(2025, 8, 12), 84) == sample["activity"]["2025-08-12"]


@pytest.mark.parametrize(
    ("tzo", "day", "first"),
    [
        ("0", "2025-08-12", "2025-08-12T22:36"),
        ("-300", "2025-08-12", "2025-08-12T17:36"),
        ("120", "2025-08-13", "2025-08-13T00:36"),
        ("330", "2025-08-13", "2025-08-13T04:06"),
    ],
)
def test_tzo_shifts_timestamps_and_days(
    sim: SimulatorServer, api: PacedApi, tzo: str, day: str, first: str
) -> None:
    _doc_day(sim.state.cbhours)
    query = {**ACTIVITY, "username": "model_name", "tzo": tzo, "include_details": "true"}
    body = api.get(**query, start_date="2025-08-11", end_date="2025-08-14").json()
    assert list(body["details"]) == [day]
    assert body["details"][day][0]["timestamp"] == first
    assert body["activity"][day].startswith(f"{day} ") and body["total_time"]["minutes"] == 24


def test_tzo_shifts_seeded_history_by_the_offset(api: PacedApi) -> None:
    def instants(tzo: int, start: str, end: str) -> set[datetime]:
        query = {**ACTIVITY, "tzo": str(tzo), "include_details": "true"}
        body = api.get(**query, start_date=start, end_date=end).json()
        local = [s["timestamp"] for day in body["details"].values() for s in day]
        return {datetime.fromisoformat(t) - timedelta(minutes=tzo) for t in local}

    utc = instants(0, "2025-07-01", "2025-07-31")
    shifted = instants(-300, "2025-07-02", "2025-07-30")
    assert shifted and shifted < utc


def test_include_details_false_or_absent_omits_details(api: PacedApi) -> None:
    keys = [key for key in doc_example("get_activity_include_details") if key != "details"]
    assert list(api.get(**ACTIVITY, **SUMMER, include_details="false").json()) == keys
    body = api.get(**ACTIVITY, **SUMMER).json()
    assert list(body) == keys and body["activity"]


def test_range_is_at_most_60_days(api: PacedApi) -> None:
    assert api.get(**ACTIVITY, start_date="2025-06-01", end_date="2025-07-30").status_code == 200
    refused = api.get(**ACTIVITY, start_date="2025-06-01", end_date="2025-07-31")
    assert refused.status_code == 400
    assert refused.json()["parameter"] == "end_date" and "60 days" in refused.json()["message"]


def test_get_activity_for_a_model_outside_the_set_is_error_300(api: PacedApi) -> None:
    reply = api.get(**{**ACTIVITY, "username": "stranger"}, **SUMMER)
    assert reply.status_code == 200
    assert reply.json() == doc_example("error_code300")


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"domain": None}, "domain"),
        ({"domain": "striphours"}, "domain"),
        ({"username": None}, "username"),
        ({"start_date": "2025-7-01"}, "start_date"),
        ({"end_date": "2025-07-32"}, "end_date"),
        ({"end_date": "2025-06-30"}, "end_date"),
        ({"tzo": None}, "tzo"),
        ({"tzo": "-5h"}, "tzo"),
        ({"tzo": "900"}, "tzo"),
        ({"include_details": "yes"}, "include_details"),
        ({"action": "get_everything"}, "action"),
        ({"action": None}, "action"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    api: PacedApi, change: dict[str, str | None], parameter: str
) -> None:
    query = {key: value for key, value in {**ACTIVITY, **SUMMER, **change}.items() if value}
    reply = api.get(**query)
    assert reply.status_code == 400
    assert reply.json()["status"] == "error"
    assert reply.json()["parameter"] == parameter


def test_get_months_newest_first(sim: SimulatorServer, api: PacedApi) -> None:
    months = {"action": "get_months", "domain": "cbhours"}
    assert api.get(**months, username="MODEL1").json() == doc_example("get_months")
    assert api.get(**months, username="model2").json() == []
    sim.state.cbhours.seed_activity("stranger", date(2025, 8, 1), date(2025, 8, 5))
    assert api.get(**months, username="stranger").json() == []
    assert api.get(**months).json()["parameter"] == "username"


def test_generated_data_is_deterministic() -> None:
    def history(seed: int) -> list[Segment]:
        state = CbhoursState(seed=seed)
        state.seed_activity("a", date(2025, 1, 1), date(2025, 1, 20))
        return state.segments("a")

    assert history(1) == history(1) != history(2)
    one = CbhoursState(seed=1)
    one.seed_activity("a", date(2025, 1, 10), date(2025, 1, 12))
    window = [s for s in history(1) if date(2025, 1, 10) <= s.at.date() <= date(2025, 1, 12)]
    assert one.segments("a") == window
    assert one.random_online("x") == CbhoursState(seed=1).random_online("X")


def test_two_quick_requests_get_429_with_retry_after(sim: SimulatorServer) -> None:
    sim.state.cbhours.rate_limit.configure(interval=0.2)
    live = {"action": "get_live", "usernames": "model1"}
    with httpx.Client(timeout=10) as client:
        first, second = (client.get(sim.cbhours_url, params=live) for _ in range(2))
        assert (first.status_code, second.status_code) == (200, 429)
        assert second.headers["retry-after"] == "1"
        assert second.json()["status"] == "error"
        time.sleep(0.2)
        assert client.get(sim.cbhours_url, params=live).status_code == 200
    view = sim.state.cbhours.rate_limit.view()
    assert (view.accepted, view.refused) == (2, 1)
    assert [e.status for e in sim.state.requests.entries("/api.php")] == [200, 429, 200]


def test_real_one_second_limit_lets_a_client_pacing_at_one_second_through(
    sim: SimulatorServer,
) -> None:
    sim.state.cbhours.rate_limit.configure(interval=1.0)
    live = {"action": "get_live", "usernames": "model1"}
    with httpx.Client(timeout=10) as client:
        sent = time.monotonic()
        assert client.get(sim.cbhours_url, params=live).status_code == 200
        time.sleep(max(0.0, sent + 1.0 - time.monotonic()))
        assert client.get(sim.cbhours_url, params=live).status_code == 200
        refused = client.get(sim.cbhours_url, params=live)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


def test_rate_limit_can_be_switched_off(sim: SimulatorServer) -> None:
    sim.state.cbhours.rate_limit.configure(enabled=False)
    with httpx.Client(timeout=10) as client:
        codes = [client.get(sim.cbhours_url, params={"action": "x"}).status_code for _ in range(5)]
    assert codes == [400] * 5
    assert sim.state.cbhours.rate_limit.view().accepted == 5


def test_status_and_delay_faults_apply_to_api_php(sim: SimulatorServer, api: PacedApi) -> None:
    sim.state.faults.set(
        [
            FaultRule(prefix="/api.php", status=429, retry_after=9),
            FaultRule(prefix="/api.php", status=500),
            FaultRule(prefix="/api.php", delay=0.3),
        ]
    )
    live = {"action": "get_live", "usernames": "model1"}
    first, second = api.get(**live), api.get(**live)
    assert (first.status_code, first.headers["retry-after"], second.status_code) == (429, "9", 500)
    started = time.monotonic()
    assert api.get(**live).json()["data"] == {"model1": doc_example("get_live")["data"]["model1"]}
    assert time.monotonic() - started >= 0.3
    # Injected answers never reach the limiter: only the delayed real answer counted.
    assert sim.state.cbhours.rate_limit.view().accepted == 1


def test_malformed_faults_damage_cbhours_bodies(sim: SimulatorServer, api: PacedApi) -> None:
    sim.state.faults.set(
        [
            FaultRule(prefix="/api.php", malformed="wrong_type", field="rank"),
            FaultRule(prefix="/api.php", malformed="wrong_type", field="viewers"),
            FaultRule(prefix="/api.php", malformed="wrong_type"),
            FaultRule(prefix="/api.php", malformed="invalid_json"),
        ]
    )
    live = api.get(action="get_live", usernames="model1").json()
    assert live["data"]["model1"]["rank"] == "123"
    details = api.get(**ACTIVITY, **SUMMER, include_details="true").json()["details"]
    assert next(iter(details.values()))[0]["viewers"] == 0  # a number where a string belongs
    months = {"action": "get_months", "domain": "cbhours", "username": "model1"}
    assert api.get(**months).json() == [0, "2025-07", "2025-06"]
    truncated = api.get(**months)
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    assert api.get(**months).json() == doc_example("get_months")


def test_limiter_tolerance_and_refusals_that_do_not_restart_the_clock() -> None:
    limit = RateLimit(interval=1.0, tolerance=0.02)
    decisions = [limit.admit(now) for now in (10.0, 10.5, 10.985, 11.5, 11.99)]
    assert decisions == [True, False, True, False, True]
    assert (limit.view().accepted, limit.view().refused) == (3, 2)


def test_control_routes_for_the_trophy_set_and_live_rows(
    sim: SimulatorServer, api: PacedApi
) -> None:
    control = f"{sim.base_url}/_sim/cbhours"
    http = api.client
    stats = http.post(control, json={"seed": 5, "trophy": ["A", "b"]}).json()
    assert (stats["seed"], stats["trophy"], stats["segments"]) == (5, ["a", "b"], {})
    for body, trophy in [
        ({"usernames": ["c"], "mode": "add"}, ["a", "b", "c"]),
        ({"usernames": ["a"], "mode": "remove"}, ["b", "c"]),
        ({"usernames": ["model1"]}, ["model1"]),
    ]:
        assert http.post(f"{control}/trophy", json=body).json()["trophy"] == trophy
    row = doc_example("get_live")["data"]["model1"]
    live = {"live": {"model1": row, "x": {"room_status": "Offline"}}, "random_online": ["y"]}
    assert http.post(f"{control}/live", json=live).json()["online"] == ["model1", "y"]
    assert sim.state.cbhours.live("model1") == MODEL1
    assert sim.state.cbhours.live("y") == sim.state.cbhours.random_online("y")
    away = {"live": {"z": {"room_status": "Away"}}}
    assert http.post(f"{control}/live", json=away).status_code == 400
    assert http.get(control).json()["trophy"] == ["model1"]
    assert sim.state.requests.count("/_sim/") == 0


def test_control_routes_for_activity_and_the_rate_limit(
    sim: SimulatorServer, api: PacedApi
) -> None:
    control = f"{sim.base_url}/_sim/cbhours"
    http = api.client
    body = {"username": "Model1", "start_date": "2025-05-01", "end_date": "2025-05-31"}
    seeded = http.post(f"{control}/activity", json=body).json()
    assert seeded["username"] == "model1" and seeded["segments"] > 0
    assert seeded["months"] == ["2025-08", "2025-07", "2025-06", "2025-05"]
    backwards = {**body, "start_date": "2025-06-30"}
    assert http.post(f"{control}/activity", json=backwards).status_code == 400
    limit = http.post(f"{control}/rate_limit", json={"enabled": False, "interval": 2.5}).json()
    assert (limit["enabled"], limit["interval"], limit["tolerance"]) == (False, 2.5, 0.02)
    unpaced = [http.get(sim.cbhours_url, params={"action": "x"}) for _ in range(3)]
    assert [reply.status_code for reply in unpaced] == [400] * 3  # none is 429
    reset = {"enabled": True, "interval": 1.0, "reset_counters": True}
    limit = http.post(f"{control}/rate_limit", json=reset).json()
    assert (limit["enabled"], limit["accepted"], limit["refused"]) == (True, 0, 0)
    assert http.get(control).json()["rate_limit"] == limit
    assert http.post(f"{control}/rate_limit", json={"interval": -1}).status_code == 400
