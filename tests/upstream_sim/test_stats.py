"""The simulated Stats API over HTTP: the documented object, its figures, overrides, refusals."""

from datetime import datetime

import httpx

from upstream_sim import SimulatorServer
from upstream_sim.tokens import default_token

KEYS = [
    "username",
    "token_balance",
    "tips_in_last_hour",
    "votes_up",
    "votes_down",
    "satisfaction_score",
    "last_broadcast",
    "time_online",
    "num_followers",
    "num_viewers",
    "num_registered_viewers",
    "num_tokened_viewers",
]


def test_an_account_that_never_broadcast(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    reply = client.get(sim.stats_url(owner))
    assert reply.status_code == 200
    body = reply.json()
    assert list(body) == KEYS
    assert body == {key: 0 for key in KEYS} | {
        "username": owner,
        "last_broadcast": -1,
        "time_online": -1,
        "num_followers": 5,
    }


def test_the_followers_count_follows_the_site(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    sim.state.site.add_followers(owner, ["fan_x", "fan_y"])
    assert client.get(sim.stats_url(owner)).json()["num_followers"] == 7
    sim.state.events.append(
        owner, [{"method": "unfollow", "object": {"user": {"username": "fan_x"}}}]
    )
    assert client.get(sim.stats_url(owner)).json()["num_followers"] == 6
    assert len(sim.state.site.follows(owner).followers) == 6


def test_events_drive_the_figures(sim: SimulatorServer, owner: str, client: httpx.Client) -> None:
    events = sim.state.events
    events.broadcast_start(owner)
    rich = {"username": "rich_fan", "hasTokens": True}
    events.append(
        owner,
        [
            {"method": "userEnter", "object": {"user": rich}},
            {"method": "userEnter", "object": {"user": {"username": "lurker", "hasTokens": False}}},
            {"method": "tip", "object": {"user": rich, "tip": {"tokens": 25}}},
            {"method": "tip", "object": {"user": rich, "tip": {"tokens": 100}}},
            {"method": "userLeave", "object": {"user": {"username": "lurker"}}},
        ],
    )
    live = client.get(sim.stats_url(owner)).json()
    assert live["token_balance"] == live["tips_in_last_hour"] == 125
    assert datetime.fromisoformat(live["last_broadcast"]).tzinfo is not None
    assert live["time_online"] == 0
    assert (live["num_viewers"], live["num_registered_viewers"], live["num_tokened_viewers"]) == (
        1,
        1,
        1,
    )
    events.broadcast_stop(owner)
    after = client.get(sim.stats_url(owner)).json()
    assert after["time_online"] == -1 and after["num_viewers"] == 0
    assert after["last_broadcast"] == live["last_broadcast"]


def test_overrides(sim: SimulatorServer, owner: str, client: httpx.Client) -> None:
    control = f"{sim.base_url}/_sim/stats/{owner}"
    stale = client.put(control, json={"num_followers": 3, "votes_up": 9, "votes_down": 1}).json()
    assert (stale["num_followers"], stale["satisfaction_score"]) == (3, 90)
    sim.state.site.add_followers(owner, ["fan_z"])
    assert client.get(sim.stats_url(owner)).json()["num_followers"] == 3  # stale on purpose
    client.put(control, json={"num_followers": None})
    assert client.get(sim.stats_url(owner)).json()["num_followers"] == 6
    assert client.get(control).json()["votes_up"] == 9
    assert client.put(control, json={"username": "x"}).status_code == 400


def test_refusals(sim: SimulatorServer, owner: str, client: httpx.Client) -> None:
    assert client.get(sim.stats_url(owner, "wrong")).status_code == 401
    assert client.get(sim.stats_url("nobody", default_token("nobody"))).status_code == 404
    assert client.get(f"{sim.base_url}/statsapi/").status_code == 400
    client.put(f"{sim.base_url}/_sim/stats/{owner}/token", json={"tokens": []})
    revoked = client.get(sim.stats_url(owner, default_token(owner)))
    assert revoked.status_code == 401 and revoked.json()["detail"] == "invalid or revoked token"
    # The Events API's token is its own.
    assert client.get(sim.events_url(owner) + "?timeout=0").status_code == 200
