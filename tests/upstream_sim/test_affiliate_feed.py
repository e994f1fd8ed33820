"""The simulated Affiliate endpoints over real HTTP: shape, paging, filters, errors, legacy."""

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.upstream_sim.support import BASE_PARAMS, ROOMS, SEED, WM, crawl, sample_rooms
from upstream_sim import AffiliateFeed, SimulatorServer, SimulatorState, generate_rooms


def _json_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _get(client: httpx.Client, sim: SimulatorServer, **params: Any) -> httpx.Response:
    return client.get(sim.affiliate_url, params={**BASE_PARAMS, **params})


def test_envelope_and_key_order_match_the_real_2025_response(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    reply = _get(client, sim, limit=500)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    page = reply.json()
    assert list(page) == ["results", "count"]  # and never the sample's "cached_ts"
    assert page["count"] == ROOMS
    assert len(page["results"]) == 500
    real = sample_rooms("affiliate_onlinerooms_2025-09-06_region-northamerica_FULL.json")
    assert all(list(room) == list(real[0]) for room in page["results"])


def test_field_types_are_the_real_types(sim: SimulatorServer, client: httpx.Client) -> None:
    real = sample_rooms("affiliate_onlinerooms_2025-09-06_region-asia_FULL.json")
    real_types = {key: {_json_type(room[key]) for room in real} for key in real[0]}
    rooms = _get(client, sim, limit=500).json()["results"]
    for room in rooms:
        for key, value in room.items():
            assert _json_type(value) in real_types[key], key
        assert (room["age"] is None) == (room["birthday"] == "")
        assert room["slug"] == room["username"]
        assert all(isinstance(tag, str) for tag in room["tags"])
    assert {_json_type(room["age"]) for room in rooms} == {"int", "null"}


def test_links_carry_the_requested_campaign(sim: SimulatorServer, client: httpx.Client) -> None:
    room = _get(client, sim, limit=1, wm="Other&Co").json()["results"][0]
    u = room["username"]
    assert room["chat_room_url"] == (
        f"https://chaturbate.com/in/?tour=yiMH&campaign=Other&Co&track=default&room={u}"
    )
    assert "campaign=Other&Co&amp;track=embed" in room["iframe_embed"]


def test_paging_covers_every_room_exactly_once(sim: SimulatorServer, client: httpx.Client) -> None:
    seen = [room["username"] for room in crawl(client, sim.affiliate_url, 500)]
    assert seen == [room.username for room in sim.state.affiliate.rooms]
    assert len(set(seen)) == ROOMS
    assert sim.state.requests.count(sim.affiliate_url.removeprefix(sim.base_url)) == 3


def test_default_limit_is_100_and_offset_past_the_end_is_empty(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    assert len(_get(client, sim).json()["results"]) == 100
    page = _get(client, sim, offset=ROOMS + 10).json()
    assert page == {"results": [], "count": ROOMS}


def test_moving_rooms_between_pages_duplicates_and_misses(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.state.affiliate.move_between_pages = 7
    before = {room.username for room in sim.state.affiliate.rooms}
    seen = [room["username"] for room in crawl(client, sim.affiliate_url, 300)]
    counts = Counter(seen)
    assert len(seen) == ROOMS
    assert any(n > 1 for n in counts.values())  # rooms pushed back onto the next page
    assert before - set(seen)  # rooms moved to the front after their page was read


def test_ranking_is_stable_between_requests(sim: SimulatorServer, client: httpx.Client) -> None:
    first = _get(client, sim, limit=50).json()["results"]
    again = _get(client, sim, limit=50).json()["results"]
    assert first == again
    viewers = [room["num_users"] for room in first]
    assert viewers != sorted(viewers, reverse=True)


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"gender": "f"}, lambda r: r.gender == "f"),
        ({"gender": ["m", "c"]}, lambda r: r.gender in ("m", "c")),
        ({"gender": "s"}, lambda r: r.gender == "t"),
        ({"region": "asia"}, lambda r: r.region == "asia"),
        ({"region": ["asia", "other"]}, lambda r: r.region in ("asia", "other")),
        ({"hd": "true"}, lambda r: r.is_hd),
        ({"hd": "false"}, lambda r: not r.is_hd),
        ({"tag": "LOVENSE"}, lambda r: "lovense" in r.tags),
        ({"tag": ["couple", "asian"]}, lambda r: "couple" in r.tags or "asian" in r.tags),
        (
            {"gender": "f", "region": "northamerica"},
            lambda r: (r.gender, r.region) == ("f", "northamerica"),
        ),
        ({"exhibitionist": "true"}, lambda r: True),
    ],
)
def test_filters(
    sim: SimulatorServer, client: httpx.Client, params: dict[str, Any], keep: Any
) -> None:
    expected = [room.username for room in sim.state.affiliate.rooms if keep(room)]
    assert len(expected) > 0
    page = _get(client, sim, limit=500, **params).json()
    assert page["count"] == len(expected)
    assert [room["username"] for room in page["results"]] == expected[:500]


def test_no_match_gives_count_zero(sim: SimulatorServer, client: httpx.Client) -> None:
    assert _get(client, sim, tag="no-such-tag").json() == {"results": [], "count": 0}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"wm": None}, "wm"),
        ({"client_ip": None}, "client_ip"),
        ({"client_ip": "not-an-ip"}, "client_ip"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"tag": ["a", "b", "c", "d", "e", "f"]}, "tag"),
        ({"gender": "x"}, "gender"),
        ({"region": "europe"}, "region"),
        ({"hd": "yes"}, "hd"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_get_400_naming_them(
    sim: SimulatorServer, client: httpx.Client, params: dict[str, Any], parameter: str
) -> None:
    query = {key: value for key, value in {**BASE_PARAMS, **params}.items() if value is not None}
    reply = client.get(sim.affiliate_url, params=query)
    assert reply.status_code == 400
    assert reply.json()["parameter"] == parameter


def test_accepted_edge_values(sim: SimulatorServer, client: httpx.Client) -> None:
    for params in (
        {"limit": "1"},
        {"limit": "500"},
        {"client_ip": "2001:db8::1"},
        {"format": "json"},
    ):
        assert _get(client, sim, **params).status_code == 200, params
    assert len(_get(client, sim, tag=["a", "b", "c", "d", "lovense"]).json()["results"]) > 0


def test_legacy_endpoint_is_a_bare_array_of_2017_rooms(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    reply = client.get(sim.legacy_affiliate_url, params={"wm": WM, "format": "json"})
    assert reply.status_code == 200
    rooms = reply.json()
    assert isinstance(rooms, list)
    assert len(rooms) == ROOMS
    for room in rooms:
        assert room["recorded"] == "false"
        assert "slug" not in room
        assert "country" not in room
        assert f"campaign={WM}&" in room["chat_room_url"]
        assert room["gender"] in {"f", "m", "s", "c"}
    assert b"https:\\/\\/" in reply.content
    assert client.get(sim.legacy_affiliate_url).json()["parameter"] == "wm"


def test_same_seed_serves_the_same_rooms(client: httpx.Client) -> None:
    pages = []
    for _ in range(2):
        with SimulatorServer(SimulatorState(affiliate=AffiliateFeed(150, seed=99))) as server:
            pages.append(
                client.get(server.affiliate_url, params={**BASE_PARAMS, "limit": 500}).content
            )
    assert pages[0] == pages[1]
    expected = [room.username for room in generate_rooms(150, seed=99, wm="x")]
    assert [
        room["username"] for room in httpx.Response(200, content=pages[0]).json()["results"]
    ] == expected


def test_reset_changes_the_rooms(sim: SimulatorServer, client: httpx.Client) -> None:
    before = _get(client, sim, limit=10).json()["results"]
    sim.state.affiliate.reset(40, SEED + 1)
    after = _get(client, sim, limit=500).json()
    assert after["count"] == 40
    assert after["results"][:10] != before


def test_update_room_changes_one_room_in_place(sim: SimulatorServer, client: httpx.Client) -> None:
    before = crawl(client, sim.affiliate_url, 500)
    name = before[3]["username"]
    updated = sim.state.affiliate.update_room(
        name, display_name="<b>bold</b>", tags=("<i>x</i>", "markup")
    )
    assert updated.display_name == "<b>bold</b>"
    after = crawl(client, sim.affiliate_url, 500)
    assert [room["username"] for room in after] == [room["username"] for room in before]
    assert after[3]["display_name"] == "<b>bold</b>"
    assert after[3]["tags"] == ["<i>x</i>", "markup"]
    assert [room for i, room in enumerate(after) if i != 3] == [
        room for i, room in enumerate(before) if i != 3
    ]
    with pytest.raises(KeyError):
        sim.state.affiliate.update_room("nobody-here", display_name="x")
