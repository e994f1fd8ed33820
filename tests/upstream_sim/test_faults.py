"""Fault injection: statuses with Retry-After, delays and malformed bodies, used up after N."""

import json
import time

import httpx
import pytest

from tests.upstream_sim.support import BASE_PARAMS, ROOMS
from upstream_sim import FaultRule, SimulatorServer

AFFILIATE_PREFIX = "/api/public/affiliates/"


def _page(client: httpx.Client, sim: SimulatorServer, limit: int = 5) -> httpx.Response:
    return client.get(sim.affiliate_url, params={**BASE_PARAMS, "limit": limit})


def test_429_with_retry_after_then_normal(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, times=2, status=429, retry_after=7)])
    replies = [_page(client, sim) for _ in range(3)]
    assert [r.status_code for r in replies] == [429, 429, 200]
    assert replies[0].headers["retry-after"] == "7"
    assert "retry-after" not in replies[2].headers
    assert len(replies[2].json()["results"]) == 5


def test_rules_fire_in_order_and_only_on_their_prefix(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.state.faults.set(
        [
            FaultRule(prefix="/affiliates/api/", status=503),
            FaultRule(prefix=AFFILIATE_PREFIX, status=500),
            FaultRule(prefix=AFFILIATE_PREFIX, status=429),
        ]
    )
    assert [_page(client, sim).status_code for _ in range(3)] == [500, 429, 200]
    assert client.get(sim.legacy_affiliate_url, params={"wm": "x"}).status_code == 503
    assert client.get(sim.legacy_affiliate_url, params={"wm": "x"}).status_code == 200
    assert [state.remaining for state in sim.state.faults.state()] == [0, 0, 0]


def test_a_query_narrows_a_rule_to_requests_holding_its_parameters(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.state.faults.set(
        [FaultRule(prefix=AFFILIATE_PREFIX, query="limit=3&client_ip=request_ip", status=500)]
    )
    assert _page(client, sim, limit=5).status_code == 200  # same path, other parameters
    assert _page(client, sim, limit=3).status_code == 500  # among others, in any order
    assert _page(client, sim, limit=3).status_code == 200  # used up
    assert [state.remaining for state in sim.state.faults.state()] == [0]


def test_delay_slows_the_answer_once(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, delay=0.4)])
    started = time.monotonic()
    assert _page(client, sim).status_code == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    _page(client, sim)
    assert time.monotonic() - started < 0.3


def test_invalid_json_is_a_truncated_real_answer(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    good = _page(client, sim).content
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, malformed="invalid_json")])
    bad = _page(client, sim)
    assert bad.status_code == 200
    assert good.startswith(bad.content)
    assert len(bad.content) < len(good)
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.content)
    assert _page(client, sim).content == good


def test_wrong_type_changes_one_room_field(sim: SimulatorServer, client: httpx.Client) -> None:
    good = _page(client, sim).json()
    sim.state.faults.set(
        [
            FaultRule(prefix=AFFILIATE_PREFIX, malformed="wrong_type"),
            FaultRule(prefix=AFFILIATE_PREFIX, malformed="wrong_type", field="num_users"),
            FaultRule(prefix=AFFILIATE_PREFIX, malformed="wrong_type", field="count"),
        ]
    )
    first = _page(client, sim).json()
    assert first["results"][0]["gender"] == 0  # a string became a number
    assert first["results"][1:] == good["results"][1:]
    second = _page(client, sim).json()
    assert second["results"][0]["num_users"] == str(good["results"][0]["num_users"])
    assert _page(client, sim).json()["count"] == str(ROOMS)
    assert _page(client, sim).json() == good


def test_unstorable_text_and_set_value_damage_one_field(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    good = _page(client, sim).json()
    sim.state.faults.set(
        [
            FaultRule(prefix=AFFILIATE_PREFIX, malformed="unstorable_text", field="room_subject"),
            FaultRule(prefix=AFFILIATE_PREFIX, malformed="set_value", field="age", value=99999),
        ]
    )
    body = _page(client, sim).content
    assert b"\\u0000\\ud800 \\udc00" in body  # escaped: valid JSON, unstorable text
    first = json.loads(body)  # the standard library reads lone surrogates
    subject = good["results"][0]["room_subject"]
    assert first["results"][0]["room_subject"].replace("\x00\ud800 \udc00", "") == subject
    assert first["results"][1:] == good["results"][1:]
    second = _page(client, sim).json()
    assert second["results"][0]["age"] == 99999
    assert second["results"][1:] == good["results"][1:]


def test_fault_plan_over_http(sim: SimulatorServer, client: httpx.Client) -> None:
    rules = {"rules": [{"prefix": AFFILIATE_PREFIX, "times": 1, "status": 500}]}
    reply = client.post(f"{sim.base_url}/_sim/faults", json=rules)
    assert reply.status_code == 200
    assert reply.json()["rules"][0]["remaining"] == 1
    assert _page(client, sim).status_code == 500
    assert client.get(f"{sim.base_url}/_sim/faults").json()["rules"][0]["remaining"] == 0
    client.post(f"{sim.base_url}/_sim/faults", json=rules)
    assert client.delete(f"{sim.base_url}/_sim/faults").status_code == 204
    assert _page(client, sim).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"prefix": "/api/"},  # does nothing
        {"prefix": "/api/", "status": 500, "malformed": "invalid_json"},
        {"prefix": "/api/", "retry_after": 3, "malformed": "invalid_json"},
        {"prefix": "/api/", "status": 429, "times": 0},
        {"prefix": "/api/", "malformed": "garbage"},
        {"prefix": "/api/", "status": 500, "colour": "red"},
        {"prefix": "/api/", "malformed": "set_value"},  # no value
        {"prefix": "/api/", "malformed": "wrong_type", "value": 1},  # a value it ignores
        {"prefix": "/api/", "status": 500, "query": "limit"},  # no name=value pair
    ],
)
def test_invalid_fault_rules_are_refused(
    sim: SimulatorServer, client: httpx.Client, rule: dict[str, object]
) -> None:
    reply = client.post(f"{sim.base_url}/_sim/faults", json={"rules": [rule]})
    assert reply.status_code == 400
    assert sim.state.faults.state() == []


def test_control_routes_are_never_faulted(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.state.faults.set([FaultRule(prefix="/", times=5, status=500)])
    assert client.get(f"{sim.base_url}/_sim/requests").status_code == 200
    assert sim.state.faults.state()[0].remaining == 5


def test_a_rule_that_cannot_apply_answers_500_naming_it(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, malformed="wrong_type", field="nope")])
    reply = _page(client, sim)
    assert reply.status_code == 500
    assert "nope" in reply.json()["detail"]


def test_nul_subject_puts_one_nul_into_the_first_room_subject(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    good = _page(client, sim).json()
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, rewrite="nul_subject")])
    reply = _page(client, sim)
    assert reply.status_code == 200
    assert b"\\u0000" in reply.content
    bad = reply.json()
    first, wanted = bad["results"][0]["room_subject"], good["results"][0]["room_subject"]
    assert first.replace("\x00", "", 1) == wanted and first.count("\x00") == 1
    assert bad["results"][1:] == good["results"][1:]
    assert _page(client, sim).json() == good


def test_empty_followers_page_lists_nobody_and_shows_no_count(sim: SimulatorServer) -> None:
    sim.state.site.add_account("faulty", "pw", followers=120)
    cookies = {"sessionid": sim.state.site.open_session("faulty")}
    url = f"{sim.base_url}/accounts/followers/"
    client = httpx.Client(timeout=10, cookies=cookies)
    good = client.get(url).text
    sim.state.faults.set([FaultRule(prefix="/accounts/followers/", rewrite="empty_followers")])
    bad = client.get(url)
    assert bad.status_code == 200
    assert "class='follower'" in good and "(120)" in good and "page=2" in good
    assert "class='follower'" not in bad.text
    assert "(120)" not in bad.text and "page=2" not in bad.text
    assert "followers_list" in bad.text  # still a logged-in followers page
    assert client.get(url).text == good
    client.close()


def test_slow_body_trickles_out_the_real_answer(sim: SimulatorServer, client: httpx.Client) -> None:
    good = _page(client, sim).content
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, slow_body=0.4)])
    started = time.monotonic()
    reply = _page(client, sim)
    assert time.monotonic() - started >= 0.4
    assert reply.status_code == 200 and reply.content == good
    assert sim.state.faults.state()[0].remaining == 0


def test_content_faults_over_http(sim: SimulatorServer, client: httpx.Client) -> None:
    rules = {"rules": [{"prefix": AFFILIATE_PREFIX, "rewrite": "nul_subject", "slow_body": 0.1}]}
    assert client.post(f"{sim.base_url}/_sim/faults", json=rules).status_code == 200
    assert "\x00" in _page(client, sim).json()["results"][0]["room_subject"]


@pytest.mark.parametrize(
    "rule",
    [
        {"prefix": "/api/", "status": 500, "rewrite": "nul_subject"},
        {"prefix": "/api/", "status": 500, "slow_body": 1},
        {"prefix": "/api/", "malformed": "invalid_json", "rewrite": "nul_subject"},
        {"prefix": "/api/", "rewrite": "garbage"},
        {"prefix": "/api/", "slow_body": 61},
    ],
)
def test_invalid_content_faults_are_refused(
    sim: SimulatorServer, client: httpx.Client, rule: dict[str, object]
) -> None:
    reply = client.post(f"{sim.base_url}/_sim/faults", json={"rules": [rule]})
    assert reply.status_code == 400
    assert sim.state.faults.state() == []


def test_a_rewrite_that_cannot_apply_answers_500_naming_it(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.state.faults.set([FaultRule(prefix=AFFILIATE_PREFIX, rewrite="empty_followers")])
    reply = _page(client, sim)
    assert reply.status_code == 500
    assert "follower rows" in reply.json()["detail"]
