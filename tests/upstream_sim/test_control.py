"""The request log, the ``/_sim/`` control routes, churn, and the server's lifecycle."""

import random
import socket
import time

import httpx
import pytest

from tests.upstream_sim.support import BASE_PARAMS, ROOMS, SEED
from upstream_sim import ONLINE_ROOMS_PATH, AffiliateFeed, SimulatorServer


def test_request_log_records_path_query_status_and_time(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    before = time.monotonic()
    client.get(sim.affiliate_url, params={**BASE_PARAMS, "limit": 3})
    client.get(sim.affiliate_url, params={"wm": "x"})
    client.get(sim.legacy_affiliate_url, params={"wm": "x"})
    entries = sim.state.requests.entries(ONLINE_ROOMS_PATH)
    assert [(e.path, e.status) for e in entries] == [
        (ONLINE_ROOMS_PATH, 200),
        (ONLINE_ROOMS_PATH, 400),
    ]
    assert entries[0].query == "wm=T3stWm&client_ip=request_ip&limit=3"
    assert before <= entries[0].t <= entries[1].t <= time.monotonic()
    assert sim.state.requests.count() == 3
    assert sim.state.requests.count("/affiliates/api/") == 1


def test_request_log_keeps_the_raw_path(sim: SimulatorServer, client: httpx.Client) -> None:
    client.get(sim.affiliate_url.rstrip("/"), params=BASE_PARAMS)
    assert [e.path for e in sim.state.requests.entries()] == [ONLINE_ROOMS_PATH.rstrip("/")]


def test_request_log_over_http(sim: SimulatorServer, client: httpx.Client) -> None:
    for _ in range(2):
        client.get(sim.affiliate_url, params=BASE_PARAMS)
    client.get(sim.legacy_affiliate_url, params={"wm": "x"})
    log = client.get(f"{sim.base_url}/_sim/requests", params={"prefix": "/api/"}).json()
    assert log["count"] == 2
    assert {entry["path"] for entry in log["requests"]} == {ONLINE_ROOMS_PATH}
    everything = client.get(f"{sim.base_url}/_sim/requests").json()
    assert everything["count"] == 3  # reading the log is not logged
    assert client.delete(f"{sim.base_url}/_sim/requests").status_code == 204
    assert sim.state.requests.count() == 0


def test_reset_over_http(sim: SimulatorServer, client: httpx.Client) -> None:
    reply = client.post(
        f"{sim.base_url}/_sim/affiliate", json={"count": 60, "seed": 3, "move_between_pages": 4}
    )
    assert reply.json() == {"online": 60, "seed": 3, "move_between_pages": 4}
    assert sim.state.affiliate.move_between_pages == 4
    assert client.get(sim.affiliate_url, params=BASE_PARAMS).json()["count"] == 60
    assert client.get(f"{sim.base_url}/_sim/affiliate").json()["online"] == 60
    bad = client.post(f"{sim.base_url}/_sim/affiliate", json={"count": -1})
    assert bad.status_code == 400


def test_tick_churns_and_drifts(sim: SimulatorServer) -> None:
    feed = sim.state.affiliate
    before = {room.username: room for room in feed.rooms}
    summary = feed.tick(random.Random(1), seconds=120, churn=0.05)
    after = {room.username: room for room in feed.rooms}
    assert len(summary.went_offline) == pytest.approx(ROOMS * 0.05, abs=1)
    assert len(summary.came_online) == pytest.approx(ROOMS * 0.05, abs=1)
    assert set(summary.went_offline).isdisjoint(after)
    assert set(summary.came_online).isdisjoint(before)
    assert summary.online == len(after)
    stayed = set(before) & set(after)
    assert all(after[u].seconds_online == before[u].seconds_online + 120 for u in stayed)
    assert all(after[u].num_followers >= before[u].num_followers for u in stayed)
    assert any(after[u].num_users != before[u].num_users for u in stayed)
    assert all(after[u].seconds_online <= 120 for u in summary.came_online)


def test_tick_over_http_is_reproducible(sim: SimulatorServer, client: httpx.Client) -> None:
    first = client.post(f"{sim.base_url}/_sim/affiliate/tick", json={"seed": 5}).json()
    sim.state.affiliate.reset(ROOMS, SEED)
    again = client.post(f"{sim.base_url}/_sim/affiliate/tick", json={"seed": 5}).json()
    assert first == again
    assert first["went_offline"]
    assert client.post(f"{sim.base_url}/_sim/affiliate/tick").status_code == 200


def test_tick_invalidates_the_served_pages(sim: SimulatorServer, client: httpx.Client) -> None:
    before = client.get(sim.affiliate_url, params={**BASE_PARAMS, "limit": 500}).json()
    sim.state.affiliate.tick(random.Random(2))
    after = client.get(sim.affiliate_url, params={**BASE_PARAMS, "limit": 500}).json()
    assert after["results"] != before["results"]
    assert [r["username"] for r in after["results"]] == [
        room.username for room in sim.state.affiliate.rooms[:500]
    ]


def test_server_binds_loopback_and_releases_the_port() -> None:
    server = SimulatorServer()
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        port = int(server.base_url.rsplit(":", 1)[1])
        assert server.affiliate_url == f"{server.base_url}{ONLINE_ROOMS_PATH}"
        reply = httpx.get(server.affiliate_url, params=BASE_PARAMS)
        assert reply.json() == {"results": [], "count": 0}  # the default feed is empty
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


def test_feed_rejects_negative_settings() -> None:
    with pytest.raises(ValueError, match="move_between_pages"):
        AffiliateFeed(move_between_pages=-1)
    with pytest.raises(ValueError, match="count"):
        AffiliateFeed(-5)
