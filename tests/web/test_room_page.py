"""My room in real Chromium against the world's agent: the feed takes in a new event without a
reload, a hostile name and message are shown as text (no script runs), and the page is
screenshot.

The world's agent knows the account's room from its Events and Stats URLs (tests/web/world.py);
the rows are written here, straight into the contract's tables, and removed afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect

from storage.records import RoomEvent
from tests.support import insert_room_events, insert_room_stats, room_event
from tests.web.screens import screenshot
from tests.web.world import ROOM_TOKEN, UiWorld

HOSTILE = "<script>alert(1)</script>"
QUOTES = "\"><img src=x onerror=alert('q')>"
NEWCOMER = "live_newcomer"
STATS_POINTS = 24 * 12 - 1  # every 5 minutes, all inside the page's default range (24 h)
FEED_SECONDS = 20  # the feed refreshes every 3 s; this only bounds a failing wait


class _Room:
    """The rows a test added to the world's room tables, removed when it ends."""

    def __init__(self, ui_world: UiWorld) -> None:
        self.account = ui_world.account
        self.conn = psycopg.connect(ui_world.db_url, autocommit=True)
        self.event_ids: list[str] = []
        self.stats: list[dt.datetime] = []

    def add(self, *events: RoomEvent) -> None:
        insert_room_events(self.conn, self.account, list(events))
        self.event_ids += [e.event_id for e in events]

    def add_stats(self, at: dt.datetime, **fields: Any) -> None:
        insert_room_stats(self.conn, self.account, at, **fields)
        self.stats.append(at)

    def remove(self) -> None:
        self.conn.execute(
            "DELETE FROM room_events WHERE account = %s AND event_id = ANY(%s)",
            [self.account, self.event_ids],
        )
        self.conn.execute(
            "DELETE FROM room_stats WHERE account = %s AND observed_at = ANY(%s)",
            [self.account, self.stats],
        )
        self.conn.close()


@pytest.fixture
def room(ui_world: UiWorld) -> Iterator[_Room]:
    """A broadcast an hour old with visitors, follows, tips and chat (one hostile name and
    message), and a day of Stats answers."""
    room = _Room(ui_world)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(hours=1)
    minute = dt.timedelta(minutes=1)
    people = ("maple", "quill", "sable", "tansy")
    events = [
        room_event("broadcastStart", start),
        room_event("roomSubjectChange", start, 1, subject="Friday #chill"),
    ]
    for i, name in enumerate(people):
        at = start + (i * 7 + 1) * minute
        events += [
            room_event("userEnter", at, username=name),
            room_event("chatMessage", at + minute, username=name, message=f"hello from {name}"),
            room_event(
                "tip",
                at + 2 * minute,
                username=name,
                tokens=(i + 1) * 25,
                message="for the song" if i % 2 else "",
            ),
        ]
        if i < 3:
            events.append(room_event("follow", at + 3 * minute, username=name))
    events += [
        room_event("userEnter", start + 40 * minute, username=HOSTILE),
        room_event("chatMessage", start + 41 * minute, username=HOSTILE, message=QUOTES),
        room_event("tip", start + 42 * minute, username=HOSTILE, tokens=66, message=QUOTES),
        room_event("tip", start + 43 * minute, username="shy", tokens=200, is_anon=True),
        room_event("userLeave", start + 44 * minute, username="maple"),
    ]
    room.add(*events)
    for step in range(STATS_POINTS):
        at = now - (step + 1) * 5 * minute
        room.add_stats(
            at,
            num_followers=1200 - step // 20,
            num_viewers=40 + abs(12 - (step // 4) % 24),
            token_balance=9000 - step * 3,
        )
    try:
        yield room
    finally:
        room.remove()


def test_my_room_takes_in_new_events_live_and_shows_hostile_text_as_text(
    signed_in: Page, ui_world: UiWorld, room: _Room
) -> None:
    page = signed_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/room")
    feed = page.locator("#room-feed")
    expect(feed.locator("li").first).to_be_visible()
    expect(feed).to_contain_text(f"{HOSTILE}:")
    expect(feed).to_contain_text(QUOTES)
    expect(page.locator("#top-tippers tbody tr").first).to_have_attribute("data-username", "tansy")
    expect(page.locator("#top-tippers")).to_contain_text("1 anonymous (200 tokens)")
    expect(page.locator("#broadcasts tbody tr[data-ongoing]")).to_have_count(1)
    for metric in ("num_followers", "num_viewers", "token_balance"):
        expect(page.locator(f'svg[data-metric="{metric}"]')).to_have_attribute(
            "data-points", str(STATS_POINTS)
        )
    assert page.locator("#room-feed script, #room-feed img").count() == 0

    # The page stays the same document while a new event arrives: a marker set now survives.
    page.evaluate("window.roomwatchTestMarker = 'kept'")
    room.add(room_event("follow", dt.datetime.now(dt.UTC), username=NEWCOMER))
    newest = feed.locator("li").first
    expect(newest).to_have_attribute("data-method", "follow", timeout=FEED_SECONDS * 1000)
    expect(newest).to_contain_text(f"{NEWCOMER} followed you")
    assert page.evaluate("window.roomwatchTestMarker") == "kept"
    assert dialogs == []
    assert ROOM_TOKEN not in page.content()
    screenshot(page, "room")
