"""The Profile page ``/users/{username}`` through the real app (no browser): fields and their
sources, charts against the API's history, the heatmap, the watch toggle and raw snapshots."""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from typing import Any

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from storage.images import Thumbnail, content_path, record_thumbnails
from storage.person_queries import FollowEvent
from storage.records import ActivitySegment, DailyActivity
from storage.writers import write_affiliate_poll, write_cbhours_activity, write_cbhours_live
from tests import factories
from tests.factories import AUTH, live, room
from tests.web.pages_support import csrf_of
from web.pages.profile import with_durations
from web.sources import format_duration

Client = TestClient[Litestar]
SVG = "{http://www.w3.org/2000/svg}"
# A whole hour a day ago: inside every range but 24 h, where only part of it is.
H = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
MARKUP = "<script>alert(1)</script>"


def at(minutes: int) -> dt.datetime:
    return H + dt.timedelta(minutes=minutes)


def segment(minutes: int, rank: int, followers: int) -> ActivitySegment:
    """A sample of alice's, ``minutes`` after hour H."""
    return factories.segment("alice", at(minutes), rank, followers)


@pytest.fixture
def alice(conn: psycopg.Connection[Any]) -> None:
    """Affiliate polls, CBHours live answers and activity (two samples in hour H, one five days
    back, one 40 days back) and a stored thumbnail."""
    for minutes, followers in [(10, 100), (20, 110), (70, 120)]:
        poll = [room("alice", num_followers=followers, display_name=MARKUP), room("bob")]
        write_affiliate_poll(conn, poll, observed_at=at(minutes))
    # Past H + 60 min: inside the 24 h range whatever minute the test runs at.
    write_cbhours_live(conn, [live("alice", rank=10, followers=130)], observed_at=at(75))
    write_cbhours_live(conn, [live("alice", rank=9, followers=131)], observed_at=at(85))
    write_cbhours_activity(
        conn,
        [
            segment(3, 12, 125),
            segment(6, 11, 126),
            segment(-5 * 24 * 60, 50, 1),
            segment(-40 * 24 * 60, 60, 1),
        ],
        [DailyActivity(username="alice", day=H.date(), online_minutes=33, tzo=0)],
        observed_at=at(30),
    )
    digest = "ab" * 32
    thumbnail = Thumbnail(
        username="alice",
        source_url="https://img.example/alice.jpg",
        local_path=content_path(digest),
        content_hash=digest,
        content_type="image/jpeg",
        size=10,
        fetched_at=at(10),
    )
    record_thumbnails(conn, [thumbnail])


def charts(text: str) -> dict[str, ET.Element]:
    """The page's history charts by metric."""
    found = {}
    for markup in re.findall(r"<svg .*?</svg>", text, re.S):
        svg = ET.fromstring(markup)  # noqa: S314 (the app's own output)
        if svg.get("data-metric"):
            found[svg.get("data-metric", "")] = svg
    return found


def heatmap_of(text: str) -> ET.Element:
    [markup] = [m for m in re.findall(r"<svg .*?</svg>", text, re.S) if "data-cells" in m]
    return ET.fromstring(markup)  # noqa: S314


def api_points(client: Client, metric: str, svg: ET.Element) -> list[Any]:
    params = {"metric": metric, "from": svg.get("data-from"), "to": svg.get("data-to")}
    answer = client.get("/api/v1/persons/alice/history", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["resolution"] == svg.get("data-resolution")
    points: list[Any] = body["points"]
    return points


def test_an_unknown_person_is_a_404_page(client: Client) -> None:
    answer = client.get("/users/nobody_here")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Nobody named &#39;nobody_here&#39;" in answer.text
    assert client.get("/users/nobody_here/snapshots").status_code == 404


@pytest.mark.usefixtures("alice")
def test_every_field_shows_its_source_and_time(client: Client) -> None:
    text = client.get("/users/ALICE").text
    detail = client.get("/api/v1/persons/alice", headers=AUTH).json()
    shown = dict(re.findall(r'<dd data-field="(\w+)"><span class="v ([\w-]+) " title="', text))
    expected = {
        field: "src-stale" if source["stale"] else f"src-{source['source']}"
        for field, source in detail["sources"].items()
        if source["source"] is not None and (detail[field] is not None or field == "image_url")
    }
    assert expected["followers"] == "src-stale"  # a day old: no longer recent
    assert expected["rank"] == "src-cbhours"
    assert expected["country"] == "src-affiliate"
    assert shown == expected
    observed = msgspec.json.decode(
        msgspec.json.encode(detail["sources"]["followers"]["observed_at"]), type=dt.datetime
    )
    assert f"{observed:%Y-%m-%d %H:%M} UTC" in text
    # Markup in the display name is text; the picture is the stored copy, never upstream's.
    assert html.escape(MARKUP) in text and MARKUP not in text
    assert f'src="/images/{detail["image_id"]}"' in text
    assert "img.example" not in text


@pytest.mark.usefixtures("alice")
@pytest.mark.parametrize("chosen", ["24h", "7d", "30d", "all"])
def test_charts_carry_the_api_history_points(client: Client, chosen: str) -> None:
    answer = client.get("/users/alice", params={"range": chosen})
    assert answer.status_code == 200
    found = charts(answer.text)
    assert set(found) == {"followers", "rank", "grank"}
    for metric, svg in found.items():
        points = api_points(client, metric, svg)
        dots = list(svg.iter(f"{SVG}circle"))
        assert len(dots) == len(points) == int(svg.get("data-points", "-1"))
        assert points, f"{metric} {chosen}: no points to compare"
        sources = {p["source"] for p in points}
        groups = {g.get("data-source"): g.get("class") for g in svg.iter(f"{SVG}g")}
        assert groups == {source: f"series src-{source}" for source in sources}
    span = dt.datetime.fromisoformat(found["rank"].get("data-to", "")) - dt.datetime.fromisoformat(
        found["rank"].get("data-from", "")
    )
    assert (
        span
        == {
            "24h": dt.timedelta(days=1),
            "7d": dt.timedelta(days=7),
            "30d": dt.timedelta(days=30),
            "all": dt.timedelta(days=90),
        }[chosen]
    )


@pytest.mark.usefixtures("alice")
def test_the_default_range_is_a_week_and_a_bad_one_is_a_400(client: Client) -> None:
    text = client.get("/users/alice").text
    assert re.search(r'<a href="/users/alice\?range=7d#history" aria-current="page">', text)
    # Hourly: CBHours in three hours (activity 5 days back, activity in H, live in H + 1),
    # Affiliate in two (H, H + 1).
    assert len(list(charts(text)["followers"].iter(f"{SVG}circle"))) == 5
    bad = client.get("/users/alice", params={"range": "1y"})
    assert bad.status_code == 400
    assert "range: expected one of 24h, 7d, 30d, all" in bad.text


@pytest.mark.usefixtures("alice")
def test_heatmap_minutes_of_a_known_hour(client: Client) -> None:
    svg = heatmap_of(client.get("/users/alice", params={"range": "7d"}).text)
    cells = {(c.get("data-day"), c.get("data-hour")): c for c in svg.iter(f"{SVG}rect")}
    assert len(cells) == 8 * 24  # seven days back to today: eight UTC dates
    cell = cells[H.date().isoformat(), str(H.hour)]
    assert cell.get("data-minutes") == "6"  # two 3-minute samples
    assert cell.findtext(f"{SVG}title") == f"{H:%Y-%m-%d %H}:00 UTC: 6 min online"
    five_days = at(-5 * 24 * 60)
    assert cells[five_days.date().isoformat(), str(five_days.hour)].get("data-minutes") == "3"
    assert sum(int(c.get("data-minutes", "0")) for c in cells.values()) == 9
    assert "33 min" in [t.text for t in svg.iter(f"{SVG}text")]  # CBHours's own day total
    # At most 30 days, whatever the range: the sample 40 days back is not in "all".
    wide = heatmap_of(client.get("/users/alice", params={"range": "all"}).text)
    assert len(list(wide.iter(f"{SVG}rect"))) == 30 * 24
    assert sum(int(c.get("data-minutes", "0")) for c in wide.iter(f"{SVG}rect")) == 9


def test_a_person_without_history_has_empty_charts(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    write_cbhours_live(conn, [live("quiet", online=False)], observed_at=H)
    text = client.get("/users/quiet").text
    for svg in charts(text).values():
        assert svg.get("data-points") == "0"
        assert [t.text for t in svg.iter(f"{SVG}text")] == ["No points in this range"]
    assert "No online time in this range" in text


@pytest.mark.usefixtures("alice")
def test_raw_snapshots_per_source_escaped(client: Client) -> None:
    text = client.get("/users/alice").text
    assert 'href="/users/alice/snapshots?source=affiliate"' in text
    assert 'href="/users/alice/snapshots?source=cbhours"' in text
    affiliate = client.get("/users/alice/snapshots", params={"source": "affiliate"})
    assert affiliate.status_code == 200
    blocks = re.findall(r'<pre class="raw">(.*?)</pre>', affiliate.text, re.S)
    assert len(blocks) == 3
    assert all("&#34;display_name&#34;: &#34;&lt;script&gt;" in block for block in blocks)
    assert MARKUP not in affiliate.text
    assert '<section class="snapshot card" data-source="cbhours">' not in affiliate.text
    cbhours = client.get("/users/alice/snapshots", params={"source": "cbhours"}).text
    assert cbhours.count('data-source="cbhours"') == 2
    assert "&#34;rank&#34;: 9" in cbhours  # pretty-printed, newest first
    bad = client.get("/users/alice/snapshots", params={"source": "followers"})
    assert bad.status_code == 400
    assert "source: expected one of affiliate, cbhours" in bad.text


def add_event(conn: psycopg.Connection[Any], username: str, kind: str, when: dt.datetime) -> None:
    conn.execute(
        "WITH a AS (INSERT INTO accounts (account) VALUES ('owner') ON CONFLICT DO NOTHING) "
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source) "
        "SELECT 'owner', person_id, %s, %s, 'followed_cams' FROM persons WHERE username = %s",
        [kind, when, username],
    )


@pytest.mark.usefixtures("alice")
def test_follow_events_with_how_long(client: Client, conn: psycopg.Connection[Any]) -> None:
    t0 = H - dt.timedelta(days=10)
    for kind, days in [("followed", 0), ("new_follower", 1), ("unfollowed", 3),
                       ("lost_follower", 4), ("followed", 6)]:  # fmt: skip
        add_event(conn, "alice", kind, t0 + dt.timedelta(days=days))
    add_event(conn, "bob", "followed", t0)
    conn.execute("UPDATE persons SET following = true, follower = false WHERE username = 'alice'")
    # Followed again at H - 4 d, five days ago give or take the hour the test runs in (H is
    # fixed when the module is imported, possibly in an earlier hour).
    so_far = format_duration((dt.datetime.now(dt.UTC) - t0 - dt.timedelta(days=6)).total_seconds())
    text = client.get("/users/alice").text
    rows = re.findall(
        r'<tr data-kind="(\w+)">\s*<td>([^<]*)</td>\s*<td>[^<]*</td>\s*'
        r'<td class="lasted">([^<]*)</td>',
        text,
    )
    assert so_far.startswith("5 d ")
    assert [(kind, lasted) for kind, _, lasted in rows] == [
        ("followed", f"{so_far} so far"),
        ("lost_follower", "after 3 d 0 h"),
        ("unfollowed", "after 3 d 0 h"),
        ("new_follower", ""),
        ("followed", ""),
    ]
    assert rows[0][1] == f"{t0 + dt.timedelta(days=6):%Y-%m-%d %H:%M} UTC"
    following = re.search(r'<dd data-field="following">([^<]*)</dd>', text)
    assert following and following.group(1).startswith("yes, since ")


def test_a_person_without_follow_events_says_so(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    write_cbhours_live(conn, [live("quiet", online=False)], observed_at=H)
    assert "No follow events" in client.get("/users/quiet").text


@pytest.mark.usefixtures("alice")
def test_the_watch_toggle_needs_the_csrf_token_and_works(client: Client) -> None:
    refused = client.post("/users/alice/watch", data={"watch": "true"}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = client.post("/users/alice/watch", data={"watch": "true", "csrf_token": "x"})
    assert wrong.status_code == 403
    assert client.get("/api/v1/persons/alice", headers=AUTH).json()["watch"] is False

    token = csrf_of(client)
    page = client.get("/users/alice").text
    assert re.search(r'<form class="watch" method="post" action="/users/alice/watch">', page)
    assert '<input type="hidden" name="watch" value="true">' in page
    done = client.post("/users/alice/watch", data={"watch": "true", "csrf_token": token},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == "/users/alice"
    assert client.get("/api/v1/persons/alice", headers=AUTH).json()["watch"] is True
    page = client.get("/users/alice").text
    assert ">Stop watching</button>" in page
    assert '<dd data-field="watch">yes</dd>' in page
    assert '<input type="hidden" name="watch" value="false">' in page

    off = client.post("/users/alice/watch", data={"watch": "false", "csrf_token": token})
    assert off.status_code == 200  # followed the redirect to the profile
    assert '<dd data-field="watch">no</dd>' in off.text
    bad = client.post("/users/alice/watch", data={"watch": "maybe", "csrf_token": token})
    assert bad.status_code == 400
    assert "watch: expected true or false" in bad.text
    nobody = client.post("/users/nobody_here/watch", data={"watch": "true", "csrf_token": token})
    assert nobody.status_code == 404
    assert client.get("/api/v1/persons/nobody_here", headers=AUTH).status_code == 404


@pytest.mark.usefixtures("alice")
def test_the_mute_toggle_needs_the_csrf_token_and_works(
    client: Client, conn: psycopg.Connection[Any]
) -> None:
    def muted() -> Any:
        return conn.execute("SELECT alerts_muted FROM persons WHERE username = 'alice'").fetchone()

    refused = client.post("/users/alice/mute", data={"mute": "true"}, follow_redirects=False)
    assert refused.status_code == 403
    assert muted() == (False,)
    token = csrf_of(client)
    page = client.get("/users/alice").text
    assert '<form class="mute" method="post" action="/users/alice/mute">' in page
    assert '<input type="hidden" name="mute" value="true">' in page
    assert '<dd data-field="alerts_muted">no</dd>' in page
    done = client.post("/users/alice/mute", data={"mute": "true", "csrf_token": token},
                       follow_redirects=False)  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/users/alice")
    assert muted() == (True,)
    page = client.get("/users/alice").text
    assert ">Unmute live alerts</button>" in page
    assert '<dd data-field="alerts_muted">yes</dd>' in page
    off = client.post("/users/alice/mute", data={"mute": "false", "csrf_token": token})
    assert off.status_code == 200 and '<dd data-field="alerts_muted">no</dd>' in off.text
    bad = client.post("/users/alice/mute", data={"mute": "maybe", "csrf_token": token})
    assert bad.status_code == 400 and "mute: expected true or false" in bad.text
    nobody = client.post("/users/nobody_here/mute", data={"mute": "true", "csrf_token": token})
    assert nobody.status_code == 404


def event(kind: str, day: int) -> FollowEvent:
    return FollowEvent(event_id=day, username="alice", kind=kind, source="followers", job_id=None,
                       occurred_at=H + dt.timedelta(days=day))  # fmt: skip


def test_durations_pair_each_end_with_its_start() -> None:
    newest_first = [event("lost_follower", 9), event("new_follower", 7), event("unfollowed", 5),
                    event("lost_follower", 2), event("followed", 1)]  # fmt: skip
    rows = with_durations(newest_first, following=False, follower=False, now=H + dt.timedelta(10))
    assert [(r["e"].kind, r["lasted"], r["ongoing"]) for r in rows] == [
        ("lost_follower", 2 * 86400.0, False),
        ("new_follower", None, False),
        ("unfollowed", 4 * 86400.0, False),
        ("lost_follower", None, False),  # its start is older than the events read
        ("followed", None, False),
    ]
    assert [r["label"] for r in rows][:2] == ["They unfollowed you", "They followed you"]


def test_a_start_without_an_end_lasts_until_now_only_while_it_holds() -> None:
    events = [event("new_follower", 3), event("followed", 1)]
    now = H + dt.timedelta(days=4)
    held = with_durations(events, following=True, follower=None, now=now)
    assert [(r["lasted"], r["ongoing"]) for r in held] == [(None, False), (3 * 86400.0, True)]
    ended = with_durations(events, following=False, follower=True, now=now)
    assert [(r["lasted"], r["ongoing"]) for r in ended] == [(86400.0, True), (None, False)]
