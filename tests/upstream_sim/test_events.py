"""The simulated Events API over HTTP: long poll, nextUrl, refusals, bursts, the site's world."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.upstream_sim.support import read_stream, wait_for
from upstream_sim import SimulatorServer
from upstream_sim.events.objects import USER_METHODS
from upstream_sim.faults import FaultRule
from upstream_sim.tokens import default_token

USER_KEYS = ["username", "inFanclub", "hasTokens", "isMod", "recentTips", "gender", "subgender"]


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_the_urls_carry_the_default_token(sim: SimulatorServer, owner: str) -> None:
    token = default_token(owner)
    assert len(token) == 24 and token.isalnum()
    assert sim.events_url(owner) == f"{sim.base_url}/events/{owner}/{token}/"
    assert sim.stats_url(owner) == f"{sim.base_url}/statsapi/?username={owner}&token={token}"
    assert sim.events_url(owner, "other") == f"{sim.base_url}/events/{owner}/other/"


def test_a_long_poll_holds_then_answers_empty(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.get, sim.events_url(owner) + "?timeout=1")
        wait_for(lambda: sim.state.events.waiting_count(owner) == 1)  # held, not answered
        reply = answer.result()
    assert reply.status_code == 200
    body = reply.json()
    assert list(body) == ["events", "nextUrl"]
    assert body["events"] == []
    assert body["nextUrl"] == sim.events_url(owner) + "?i=0-0&timeout=1"
    assert sim.state.events.waiting_count(owner) == 0

    # Past the last event the same holds, and nextUrl keeps the position.
    (event,) = sim.state.events.append(owner, [{"method": "userEnter"}])
    again = client.get(f"{sim.events_url(owner)}?i={event.id}&timeout=0.2").json()
    assert again == {"events": [], "nextUrl": f"{sim.events_url(owner)}?i={event.id}&timeout=0.2"}
    clamped = client.get(f"{sim.events_url(owner)}?i={event.id}&timeout=-5").json()
    assert clamped["nextUrl"].endswith("&timeout=0")


def test_an_appended_event_wakes_a_waiting_poll(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.get, sim.events_url(owner) + "?timeout=60")
        wait_for(lambda: sim.state.events.waiting_count(owner) == 1)
        (tip,) = sim.state.events.append(owner, [{"method": "tip"}])
        # Far below the 60 s the poll would otherwise hold.
        body = answer.result(timeout=10).json()
    assert [event["id"] for event in body["events"]] == [tip.id]
    assert _query(body["nextUrl"]) == {"i": tip.id, "timeout": "60"}


def test_next_url_resumes_without_loss_or_repeat(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    sim.state.events.burst(owner, 250, seed=1)
    first, pages, resume = read_stream(client, sim.events_url(owner))
    assert pages == [100, 100, 50]
    sent = sim.state.events.events(owner)
    assert [e["id"] for e in first] == [e.id for e in sent]
    assert _query(resume)["i"] == sent[-1].id

    more = sim.state.events.burst(owner, 30, seed=2)
    second, pages, _ = read_stream(client, resume)
    assert pages == [30]
    assert [e["id"] for e in second] == [e.id for e in more]
    ids = [e["id"] for e in first + second]
    assert len(set(ids)) == len(ids) == 280
    keys = [tuple(int(part) for part in i.split("-")) for i in ids]
    assert keys == sorted(keys)


def test_a_burst_of_ten_thousand_is_many_answers(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    appended = client.post(
        f"{sim.base_url}/_sim/events/{owner}",
        json={"burst": 10_000, "methods": ["tip", "userEnter", "chatMessage"], "seed": 5},
    ).json()
    assert appended["appended"] == appended["total"] == 10_000
    client.put(f"{sim.base_url}/_sim/events", json={"max_events_per_response": 400})
    events, pages, _ = read_stream(client, sim.events_url(owner))
    assert pages == [400] * 25
    assert {e["method"] for e in events} == {"tip", "userEnter", "chatMessage"}
    stored = client.get(f"{sim.base_url}/_sim/events/{owner}").json()
    assert stored["count"] == 10_000
    assert stored["events"] == events  # the wire and the record agree, key for key
    overview = client.get(f"{sim.base_url}/_sim/events").json()
    assert overview["accounts"] == {owner: 10_000}
    assert overview["settings"]["max_events_per_response"] == 400
    assert stored["events"][0]["id"] == appended["first_id"]


def test_bursts_are_deterministic_and_well_formed(sim: SimulatorServer, owner: str) -> None:
    first = sim.state.events.burst(owner, 300, seed=9)
    sim.state.events.reset()
    again = sim.state.events.burst(owner, 300, seed=9)
    assert [(e.method, e.object) for e in first] == [(e.method, e.object) for e in again]
    for event in again:
        assert event.object["broadcaster"] == owner
        if event.method in USER_METHODS:
            assert list(event.object["user"]) == USER_KEYS
        if event.method == "tip":
            assert event.object["tip"]["tokens"] >= 1


def test_explicit_events_keep_what_was_given(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    given = {"method": "tip", "object": {"tip": {"tokens": 77}, "user": {"username": "fan_a"}}}
    client.post(
        f"{sim.base_url}/_sim/events/{owner}",
        json={
            "events": [given, {"method": "somethingNew", "object": {"x": 1}}],
            "broadcast": "start",
        },
    )
    events, _, _ = read_stream(client, sim.events_url(owner))
    tip, unknown, start = events
    assert list(tip) == ["method", "id", "object"]
    assert tip["object"]["tip"] == {
        "tokens": 77,
        "isAnon": False,
        "message": tip["object"]["tip"]["message"],
    }
    assert tip["object"]["user"]["username"] == "fan_a"
    assert list(tip["object"]["user"]) == USER_KEYS
    assert unknown["object"] == {"broadcaster": owner, "x": 1}
    assert start == {
        "method": "broadcastStart",
        "id": start["id"],
        "object": {"broadcaster": owner},
    }


def test_refusals(sim: SimulatorServer, owner: str, client: httpx.Client) -> None:
    wrong = client.get(sim.events_url(owner, "not-the-token"))
    assert wrong.status_code == 401 and wrong.json()["status"] == 401
    assert client.get(sim.events_url("nobody", default_token("nobody"))).status_code == 404
    assert client.get(sim.events_url(owner) + "?i=banana&timeout=0").status_code == 400

    client.put(f"{sim.base_url}/_sim/events/{owner}/token", json={"tokens": ["n3wT0ken"]})
    assert client.get(sim.events_url(owner, default_token(owner))).status_code == 401
    assert client.get(sim.events_url(owner) + "?timeout=0").status_code == 200  # the new one

    # Admitted requests count (one so far, above); refused ones do not.
    client.put(f"{sim.base_url}/_sim/events", json={"max_requests_per_minute": 3})
    url = sim.events_url(owner) + "?timeout=0"
    statuses = [client.get(url).status_code for _ in range(2)]
    limited = client.get(url)
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_faults_and_the_request_log_apply(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    sim.state.faults.set([FaultRule(prefix="/events/", status=502, times=1)])
    url = sim.events_url(owner) + "?timeout=0"
    assert [client.get(url).status_code for _ in range(2)] == [502, 200]
    assert [r.status for r in sim.state.requests.entries("/events/")] == [502, 200]


def test_followers_changed_on_the_site_are_events(
    sim: SimulatorServer, owner: str, client: httpx.Client
) -> None:
    site = sim.state.site
    before = site.follows(owner).followers
    site.add_followers(owner, ["new_fan_1", "new_fan_2"])
    client.post(
        f"{sim.base_url}/_sim/site/follows/{owner}/followers",
        json={"add": ["new_fan_3"], "remove": [before[0]]},
    )
    site.set_follows(owner, site.follows(owner).with_followers(site.follows(owner).followers[1:]))
    events, _, _ = read_stream(client, sim.events_url(owner))
    assert [(e["method"], e["object"]["user"]["username"]) for e in events] == [
        ("follow", "new_fan_1"),
        ("follow", "new_fan_2"),
        ("follow", "new_fan_3"),
        ("unfollow", before[0]),
        ("unfollow", "new_fan_3"),
    ]
    assert site.follows(owner).followers == ("new_fan_2", "new_fan_1", *before[1:])


def test_follow_events_appended_by_a_test_change_the_followers_list(
    sim: SimulatorServer, owner: str
) -> None:
    before = sim.state.site.follows(owner).followers
    sim.state.events.append(
        owner,
        [
            {"method": "follow", "object": {"user": {"username": "streamed_fan"}}},
            {"method": "unfollow", "object": {"user": {"username": before[-1]}}},
        ],
    )
    assert sim.state.site.follows(owner).followers == ("streamed_fan", *before[:-1])
    # The list changed quietly: no second follow event came back from the site.
    assert [e.method for e in sim.state.events.events(owner)] == ["follow", "unfollow"]
