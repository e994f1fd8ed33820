"""The simulated follow lists over HTTP: the room-list API rules, pages, switches, control."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import msgspec

from upstream_sim import SimulatorServer
from upstream_sim.site.state import SiteSwitches

SAMPLE = Path(__file__).parents[1] / "fixtures/roomlist_api_ts_room-list_2026-02-06_anonymous.json"
XHR = {"X-Requested-With": "XMLHttpRequest"}
API = "/api/ts/roomlist/room-list/"


def _logged_in(sim: SimulatorServer, client: httpx.Client, **lists: int) -> str:
    sim.state.site.reset()
    sim.state.site.add_account("alice", "pw", **lists)
    sessionid = sim.state.site.open_session("alice")
    client.cookies.set("sessionid", sessionid)
    return sessionid


def _switch(sim: SimulatorServer, **changes: object) -> None:
    switches: SiteSwitches = msgspec.structs.replace(sim.state.site.switches, **changes)
    sim.state.site.set_switches(switches)


def test_the_room_list_api_follows_the_real_rules(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    _logged_in(sim, client, followed_online=3, followed_total=10)
    url = sim.base_url + API
    params = {"follow": "true", "offline": "true", "limit": 4, "offset": 4}
    assert client.get(url, params=params, follow_redirects=False).status_code == 302

    page = client.get(url, params=params, headers=XHR).json()
    real_keys = list(json.loads(SAMPLE.read_bytes())["rooms"][0])
    assert list(page) == list(json.loads(SAMPLE.read_bytes()))
    assert [list(room) for room in page["rooms"]] == [real_keys] * 3  # rooms 5-7 of 7
    assert page["total_count"] == 7
    assert all(r["is_following"] and r["current_show"] == "offline" for r in page["rooms"])
    assert page["rooms"][0]["img"].startswith(sim.base_url + "/riw/")

    sim.state.site.expire_sessions()
    anonymous = client.get(url, params=params, headers=XHR).json()
    assert anonymous["total_count"] == 8045
    assert not any(room["is_following"] for room in anonymous["rooms"])


def test_pages_switches_and_control(sim: SimulatorServer, client: httpx.Client) -> None:
    _logged_in(sim, client, followed_online=1, followed_total=3, followers=5)
    page = client.get(sim.base_url + "/followed-cams/offline/?page=2")
    assert "(1/3)" in page.text and "data-offline='true'" in page.text

    _switch(sim, fail_list="offline", fail_page=2, fail_mode="http_500")
    assert client.get(sim.base_url + "/followed-cams/offline/?page=2").status_code == 500
    assert client.get(sim.base_url + "/followed-cams/offline/").status_code == 200
    _switch(sim, fail_mode="api_500")
    call = {"follow": "true", "offline": "true", "limit": 90, "offset": 90}
    assert client.get(sim.base_url + API, params=call, headers=XHR).status_code == 500

    _switch(sim, followers_page_size=2, fail_list=None)
    followers = client.get(sim.base_url + "/accounts/followers/?page=3").text
    assert followers.count("data-testid='follower-username'") == 1
    assert "(5)</span>" in followers

    generated = client.post(
        sim.base_url + "/_sim/site/follows",
        json={"username": "alice", "online": 100, "offline": 1400, "followers": 7, "seed": 3},
    )
    assert generated.json() == {
        "username": "alice",
        "online": 100,
        "offline": 1400,
        "followers": 7,
    }
    assert "(100/1500)" in client.get(sim.base_url + "/followed-cams/").text
    image = client.get(sim.base_url + "/riw/somebody.jpg")
    assert image.headers["content-type"] == "image/png" and len(image.content) > 8000


def test_the_table_markup_of_the_followers_pages(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    _logged_in(sim, client, followers=145)
    _switch(sim, followers_markup="table")
    names = sim.state.site.follows("alice").followers
    first = client.get(sim.base_url + "/accounts/followers/").text
    assert "<h2>Followers (145)</h2>" in first
    assert "data-testid='follower" not in first and "followers_count" not in first
    assert first.count("<tr><td><a href=") == 50
    assert "<div class='pagination'>" in first
    assert "<a class='next' href='?page=2'>" in first
    last = client.get(sim.base_url + "/accounts/followers/?page=3").text
    assert last.count("<tr><td><a href=") == 45
    assert f"<a href='/{names[-1]}/'>" in last
    assert "<span class='current'>3</span>" in last and "class='next'" not in last
    past = client.get(sim.base_url + "/accounts/followers/?page=4")
    assert past.status_code == 404 and "followed_counts" in past.text
