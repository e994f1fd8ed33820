"""My room without a browser: the feed, followers today, top tippers, broadcasts and the Stats
charts from rows in the contract's tables; the feed's fragment under the session cookie only;
hostile names and texts shown as text; and the page without any URL says what to set.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from parsel import Selector

from control_api.app import create_app
from roomwatch.config import Config, load_config
from storage.settings import register_stream_accounts
from tests.factories import TOKEN
from tests.support import insert_room_events, insert_room_stats, room_event
from tests.web.pages_support import sign_in

Client = TestClient[Litestar]
OWNER = "room_owner"
EVENTS_TOKEN = "evtok1234567890abcdefghijklmnop"
STATS_TOKEN = "sttok1234567890abcdefghijklmnop"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
MIN = dt.timedelta(minutes=1)
HOSTILE = "<script>alert(1)</script>"
QUOTES = "\"><img src=x onerror=alert('q')>"


@pytest.fixture
def app_config(tmp_path: Path) -> Config:
    """The app's config (tests/conftest.py's ``app`` reads it): both URLs name :data:`OWNER`."""
    return load_config(
        {
            "ROOMWATCH_DATA_DIR": str(tmp_path / "data"),
            "ROOMWATCH_EVENTS_URL": (
                f"https://eventsapi.chaturbate.com/events/{OWNER}/{EVENTS_TOKEN}/"
            ),
            "ROOMWATCH_STATS_URL": (
                f"https://chaturbate.com/statsapi/?username={OWNER}&token={STATS_TOKEN}"
            ),
        }
    )


def _follower_event(conn: psycopg.Connection[Any], name: str, kind: str, at: dt.datetime) -> None:
    conn.execute(
        "INSERT INTO persons (username) VALUES (%s) ON CONFLICT (username) DO NOTHING", [name]
    )
    conn.execute(
        "WITH a AS (INSERT INTO accounts (account) VALUES (%s) ON CONFLICT DO NOTHING) "
        "INSERT INTO follow_events (account, person_id, kind, occurred_at, source) "
        "SELECT %s, person_id, %s, %s, 'events_api' FROM persons WHERE username = %s",
        [OWNER, OWNER, kind, at, name],
    )


@pytest.fixture
def room(conn: psycopg.Connection[Any]) -> None:
    """A broadcast with a follow, tips (one with a hostile note from a hostile name), chat,
    a hostile subject; follower events today; Stats answers over the last hours."""
    start = NOW - 50 * MIN
    insert_room_events(
        conn,
        OWNER,
        [
            room_event("broadcastStart", start),
            room_event("roomSubjectChange", start + MIN, subject=HOSTILE),
            room_event("userEnter", start + 2 * MIN, username="ann"),
            room_event("follow", start + 3 * MIN, username="ann"),
            room_event("tip", start + 4 * MIN, username="ann", tokens=25, message="thanks!"),
            room_event("tip", start + 5 * MIN, username=HOSTILE, tokens=40, message=QUOTES),
            room_event("tip", start + 6 * MIN, username="ben", tokens=500, is_anon=True),
            room_event("chatMessage", start + 7 * MIN, username="ben", message=QUOTES),
        ],
    )
    today = dt.datetime.combine(NOW.date(), dt.time(), dt.UTC)
    _follower_event(conn, "ann", "new_follower", max(today, NOW - 47 * MIN))
    _follower_event(conn, "cid", "lost_follower", today)  # the first second of today
    _follower_event(conn, "old_fan", "lost_follower", today - dt.timedelta(seconds=1))
    for i in range(12):
        insert_room_stats(
            conn,
            OWNER,
            NOW - (i + 1) * 5 * MIN,
            num_followers=1000 + i,
            num_viewers=20 + i,
            token_balance=5000 - i,
        )


def test_the_page_shows_the_feed_followers_tippers_broadcasts_and_charts(
    client: Client, room: None
) -> None:
    answer = client.get("/room")
    assert answer.status_code == 200
    page = Selector(text=answer.text)
    feed = page.css("#room-feed")
    assert feed.attrib["data-refresh"] == "/room/feed"
    methods = feed.css("li::attr(data-method)").getall()
    assert methods[0] == "chatMessage" and methods[-1] == "broadcastStart" and len(methods) == 8
    anonymous = feed.css('li[data-method="tip"]')[0]
    assert "anonymous" in anonymous.get() and "ben" not in anonymous.get()
    assert page.css("#followers-today [data-gained]::attr(data-gained)").get() == "1"
    assert page.css("#followers-today [data-lost]::attr(data-lost)").get() == "1"
    assert page.css('#followers-today [data-kind="lost"] a::text').getall() == ["cid"]
    tippers = page.css("#top-tippers tbody tr::attr(data-username)").getall()
    assert tippers == [HOSTILE, "ann"]  # the anonymous 500 tokens are nobody's
    assert "1 anonymous (500 tokens)" in " ".join(page.css("#top-tippers .hint ::text").getall())
    broadcast = page.css("#broadcasts tbody tr")
    assert len(broadcast) == 1 and broadcast.attrib["data-ongoing"] == "true"
    assert broadcast.css('td[data-field="tokens"]::text').get() == "565"
    charts = page.css("#stats ~ .charts svg")
    assert [c.attrib["data-metric"] for c in charts] == [
        "num_followers",
        "num_viewers",
        "token_balance",
    ]
    assert all(c.attrib["data-points"] == "12" for c in charts)
    assert EVENTS_TOKEN not in answer.text and STATS_TOKEN not in answer.text


def test_hostile_names_and_texts_are_text_on_the_page_and_in_the_fragment(
    client: Client, room: None
) -> None:
    for path in ("/room", "/room/feed"):
        html = client.get(path).text
        assert HOSTILE not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&#34;&gt;&lt;img src=x onerror=alert(&#39;q&#39;)&gt;" in html
        # The hostile name in a link: escaped inside the attribute, percent-encoded in the URL.
        assert 'href="/users/%3Cscript%3Ealert%281%29%3C/script%3E"' in html


def test_the_feed_fragment_is_the_block_alone_and_only_for_a_session(
    client: Client, room: None
) -> None:
    fragment = client.get("/room/feed")
    assert fragment.status_code == 200
    block = Selector(text=fragment.text).css("section#room-feed")
    assert block.attrib["data-refresh"] == "/room/feed" and block.attrib["data-events"] == "8"
    assert "<html" not in fragment.text
    # The JSON API never takes the cookie.
    assert client.get("/api/v1/room/events").status_code == 401


def test_without_the_urls_the_page_says_what_to_set(db_url: str, tmp_path: Path) -> None:
    plain = create_app(
        load_config({"ROOMWATCH_DATA_DIR": str(tmp_path / "plain")}), db_url, TOKEN, "test"
    )
    with TestClient(plain) as client:
        assert sign_in(client).status_code == 303
        answer = client.get("/room")
        feed = client.get("/room/feed").text
    assert answer.status_code == 200
    setup = " ".join(Selector(text=answer.text).css("#room-setup ::text").getall())
    for setting in ("events.url", "ROOMWATCH_EVENTS_URL", "stats.url", "ROOMWATCH_STATS_URL"):
        assert setting in setup
    assert "No Events API configured" in feed


def test_with_several_accounts_the_page_shows_the_one_named_or_chosen(
    db_url: str, tmp_path: Path, conn: psycopg.Connection[Any], room: None
) -> None:
    second = "studio_b"
    insert_room_events(conn, second, [room_event("tip", NOW - MIN, username="bob", tokens=7)])
    config = load_config(
        {
            "ROOMWATCH_DATA_DIR": str(tmp_path / "two"),
            "ROOMWATCH_EVENTS_URL": (
                f"https://eventsapi.chaturbate.com/events/{OWNER}/{EVENTS_TOKEN}/ "
                f"https://eventsapi.chaturbate.com/events/{second}/{EVENTS_TOKEN}b/"
            ),
            "ROOMWATCH_STATS_URL": (
                f"https://chaturbate.com/statsapi/?username={OWNER}&token={STATS_TOKEN}"
            ),
        }
    )
    register_stream_accounts(conn, config)  # as the agent does at start
    with TestClient(create_app(config, db_url, TOKEN, "test")) as client:
        assert sign_in(client).status_code == 303
        unchosen = client.get("/room")
        assert unchosen.status_code == 400
        offered = Selector(text=unchosen.text).css("select[name=account] option::attr(value)")
        assert {OWNER, second} <= set(offered.getall())

        theirs = Selector(text=client.get("/room", params={"account": second}).text)
        assert theirs.css("#room-feed li::attr(data-method)").getall() == ["tip"]
        assert not theirs.css("#stats ~ .charts svg")  # no Stats URL of theirs
        # The feed's refreshes (no query) read the account this browser chose.
        refreshed = Selector(text=client.get("/room/feed").text)
        assert refreshed.css("#room-feed li::attr(data-method)").getall() == ["tip"]

        mine = Selector(text=client.get("/room", params={"account": OWNER}).text)
        assert len(mine.css("#room-feed li")) == 8
        assert len(mine.css("#stats ~ .charts svg")) == 3


def test_a_range_it_does_not_know_is_a_400_page(client: Client) -> None:
    answer = client.get("/room", params={"range": "forever"})
    assert answer.status_code == 400
    assert "range" in answer.text
