"""Notices through the real notifier to a real loopback webhook: a watched or followed person
going live (once per broadcast; mute; quiet hours), new and lost followers from the Events API
(one by one, or a digest), big tips. Nothing is sent twice, across checks or notifiers."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg
import pytest

from agent.alerts import AlertNotifier
from roomwatch.config import AlertsConfig, Config
from storage.alerts import read_alerts
from storage.notices import forget_old_notices
from storage.watch_list import set_mute, set_watch
from storage.writers import write_affiliate_poll
from tests.factories import room
from tests.support import HttpRecorder, crawl
from upstream_sim.server import SimulatorServer

Conn = psycopg.Connection[Any]


def _settings(webhook: HttpRecorder, **fields: Any) -> AlertsConfig:
    return AlertsConfig(webhook_url=f"http://{webhook.address}/hook", **fields)


def _ago(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)


def _poll(conn: Conn, minutes_ago: float, *online: str) -> dt.datetime:
    """A complete Affiliate poll ``minutes_ago`` listing ``online`` (the others go offline);
    returns its time."""
    at = _ago(minutes_ago)
    write_affiliate_poll(conn, [room(name) for name in online], observed_at=at, complete=True)
    return at


def _told(webhook: HttpRecorder, kind: str) -> list[str]:
    return [body["subject"] for body in webhook.bodies if body["kind"] == kind]


def test_going_live_is_told_once_per_broadcast(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    set_watch(conn, ["alice", "erin"], True)
    set_mute(conn, ["erin"], True)
    conn.execute("INSERT INTO persons (username, following) VALUES ('dave', true)")
    notifier = AlertNotifier(db_url, _settings(webhook))
    everyone = ("alice", "bob", "dave", "erin")
    polls = []
    for minutes_ago in (40, 39, 38):  # one broadcast, three polls, a check after each
        polls.append(_poll(conn, minutes_ago, *everyone))
        notifier.check()
    assert sorted(_told(webhook, "went_live")) == ["alice", "dave"]  # bob: neither; erin: muted
    assert read_alerts(conn, 3) == []  # news, not a condition: /status does not list it
    alice = next(b for b in webhook.bodies if b["subject"] == "alice")
    assert alice["message"] == "alice went live (watched)"
    assert dt.datetime.fromisoformat(alice["since"]) == polls[0]  # the first sighting
    dave = next(b for b in webhook.bodies if b["subject"] == "dave")
    assert dave["message"] == "dave went live (followed)"

    _poll(conn, 37, "bob")  # offline: a short flap, back within the gap
    notifier.check()
    _poll(conn, 33, *everyone)
    notifier.check()
    assert len(_told(webhook, "went_live")) == 2

    _poll(conn, 30, "bob")  # offline for 25 minutes: the next sighting is a new broadcast
    _poll(conn, 5, *everyone)
    another = AlertNotifier(db_url, _settings(webhook))  # a second agent, or a restart
    sent = another.check()
    assert sorted(n.subject for n in sent) == ["alice", "dave"]
    assert notifier.check() == [] and another.check() == []
    assert sorted(_told(webhook, "went_live")) == ["alice", "alice", "dave", "dave"]

    # Unmuted mid-broadcast: erin's broadcast is still news (it began minutes ago); her first
    # one, over since, is not.
    set_mute(conn, ["erin"], False)
    assert [n.subject for n in notifier.check()] == ["erin"]


def test_the_affiliate_spider_against_the_simulator_tells_going_live_once(
    crawl_env: Config, db_url: str, conn: Conn, sim: SimulatorServer, webhook: HttpRecorder
) -> None:
    rooms = sim.state.affiliate.rooms[:50]
    star, other = rooms[0].username.lower(), rooms[1].username.lower()
    set_watch(conn, [star], True)
    sim.state.affiliate.set_rooms(rooms)
    notifier = AlertNotifier(db_url, _settings(webhook))
    for _ in range(2):  # two polls while she is online
        assert crawl(crawl_env, db_url, "affiliate").status == "succeeded"
        notifier.check()
    sim.state.affiliate.set_rooms(rooms[1:])  # a poll that misses her: offline, briefly
    assert crawl(crawl_env, db_url, "affiliate").status == "succeeded"
    online = "SELECT online FROM person_summary WHERE username = %s"
    assert conn.execute(online, [star]).fetchone() == (False,)
    assert notifier.check() == []
    sim.state.affiliate.set_rooms(rooms)  # back within the gap: the same broadcast
    assert crawl(crawl_env, db_url, "affiliate").status == "succeeded"
    assert notifier.check() == []
    assert [(b["kind"], b["subject"]) for b in webhook.bodies] == [("went_live", star)]
    assert other not in str(webhook.bodies)  # online throughout, but nobody watches them


def _quiet_now(zone: str) -> str:
    """Quiet hours from an hour ago to an hour from now, in ``zone``'s local time."""
    import zoneinfo

    local = dt.datetime.now(zoneinfo.ZoneInfo(zone))
    start, end = local - dt.timedelta(hours=1), local + dt.timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_quiet_hours_hold_going_live_back_for_good(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    set_watch(conn, ["alice"], True)
    _poll(conn, 40, "alice")
    zone = "Asia/Kolkata"  # UTC+05:30: the span is read in the configured zone, not UTC
    quiet = AlertNotifier(db_url, _settings(webhook, quiet_hours=_quiet_now(zone), timezone=zone))
    assert quiet.check() == []
    # Quiet hours over (here: a notifier without them): what was held back is not sent late.
    loud = AlertNotifier(db_url, _settings(webhook))
    assert loud.check() == []
    assert webhook.bodies == []
    # The same span read as UTC is not now (Kolkata is 5.5 hours ahead), so a new broadcast
    # is told.
    elsewhere = AlertNotifier(db_url, _settings(webhook, quiet_hours=_quiet_now(zone)))
    _poll(conn, 39)
    _poll(conn, 1, "alice")
    assert [n.kind for n in elsewhere.check()] == ["went_live"]


def test_a_notice_reaches_an_apprise_url_as_plain_information(
    conn: Conn, db_url: str, endpoint: HttpRecorder
) -> None:
    _follower_events(conn, ("new_follower", "fan_one"))
    notifier = AlertNotifier(db_url, AlertsConfig(apprise_urls=[f"json://{endpoint.address}/n"]))
    assert [n.kind for n in notifier.check()] == ["new_follower"]
    assert notifier.check() == []
    [body] = endpoint.bodies
    assert (body["title"], body["message"]) == (
        "roomwatch: new_follower fan_one",
        "fan_one now follows you",
    )
    assert body["type"] == "info"


def test_claims_of_old_notices_are_forgotten_alert_claims_kept(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    _follower_events(conn, ("new_follower", "fan_one"), ("new_follower", "fan_two"))
    assert len(AlertNotifier(db_url, _settings(webhook)).check()) == 2
    conn.execute(
        "INSERT INTO alert_notifications (alert_key, sent_at) VALUES ('spider_failing:x:1', now())"
    )
    # fan_one's follow and its claim three hours old; fan_two's recent.
    conn.execute(
        "UPDATE follow_events SET occurred_at = now() - interval '3 hours' "
        "WHERE person_id = (SELECT person_id FROM persons WHERE username = 'fan_one')"
    )
    conn.execute("UPDATE alert_notifications SET sent_at = now() - interval '3 hours' "
                 "WHERE alert_key NOT LIKE 'new_follower:%' OR alert_key = ("
                 "SELECT 'new_follower:' || min(event_id) FROM follow_events)")  # fmt: skip
    assert forget_old_notices(conn) == 1
    keys = [row[0] for row in conn.execute("SELECT alert_key FROM alert_notifications")]
    assert len(keys) == 2 and "spider_failing:x:1" in keys
    assert AlertNotifier(db_url, _settings(webhook)).check() == []  # neither is told again
    assert len(webhook.bodies) == 2


def _follower_events(conn: Conn, *events: tuple[str, str], minutes_ago: float = 1,
                     source: str = "events_api", account: str = "owner") -> None:  # fmt: skip
    """``follow_events`` rows of ``account`` as the Events API writer stores them: (kind,
    username)."""
    conn.execute("INSERT INTO accounts (account) VALUES (%s) ON CONFLICT DO NOTHING", [account])
    for kind, name in events:
        conn.execute(
            "WITH p AS (INSERT INTO persons (username) VALUES (%(name)s) ON CONFLICT (username)"
            " DO UPDATE SET username = excluded.username RETURNING person_id)"
            " INSERT INTO follow_events (account, person_id, kind, occurred_at, source)"
            " SELECT %(account)s, person_id, %(kind)s, %(at)s, %(source)s FROM p",
            {"name": name, "kind": kind, "at": _ago(minutes_ago), "source": source,
             "account": account},
        )  # fmt: skip


def test_new_and_lost_followers_are_told_once_each(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    _follower_events(conn, ("new_follower", "old_fan"), minutes_ago=120)  # before the window
    _follower_events(conn, ("lost_follower", "crawled"), source="followers")  # a crawl's
    _follower_events(conn, ("new_follower", "fan_one"), ("lost_follower", "fan_two"))
    notifier = AlertNotifier(db_url, _settings(webhook))
    sent = notifier.check()
    assert [(n.kind, n.subject) for n in sent] == [
        ("new_follower", "fan_one"),
        ("lost_follower", "fan_two"),
    ]
    assert [b["message"] for b in webhook.bodies] == [
        "fan_one now follows you",
        "fan_two no longer follows you",
    ]
    assert notifier.check() == []
    assert AlertNotifier(db_url, _settings(webhook)).check() == []
    assert len(webhook.bodies) == 2


def test_with_several_accounts_each_follower_notice_names_its_account(
    conn: Conn, db_url: str, webhook: HttpRecorder, endpoint: HttpRecorder
) -> None:
    _follower_events(conn, ("new_follower", "fan_one"), account="studio_a")
    # Names are upstream's: markup in them never reaches a message as markup.
    _follower_events(conn, ("lost_follower", "<b>fan</b>"), account="<i>studio_b</i>")
    settings = AlertsConfig(
        webhook_url=f"http://{webhook.address}/hook",
        apprise_urls=[f"json://{endpoint.address}/n"],
    )
    sent = AlertNotifier(db_url, settings).check()
    assert [(n.kind, getattr(n, "account", None)) for n in sent] == [
        ("new_follower", "studio_a"),
        ("lost_follower", "?i?studio_b??i?"),
    ]
    expected = [
        "fan_one now follows you (studio_a)",
        "?b?fan??b? no longer follows you (?i?studio_b??i?)",
    ]
    assert [b["message"] for b in webhook.bodies] == expected
    assert [b["message"] for b in endpoint.bodies] == expected
    assert all("<" not in str(body) for body in webhook.bodies + endpoint.bodies)


def test_a_digest_names_the_accounts_when_there_are_several(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    _follower_events(conn, ("new_follower", "fan_a"), account="studio_a")
    _follower_events(conn, ("new_follower", "fan_b"), ("lost_follower", "gone"), account="studio_b")
    [digest] = AlertNotifier(db_url, _settings(webhook, follower_digest_threshold=2)).check()
    assert digest.message == (
        "3 follower changes: 2 new (fan_a (studio_a), fan_b (studio_b)); 1 lost (gone (studio_b))"
    )


def test_many_followers_at_once_are_one_digest(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    names = [f"fan_{n}" for n in range(7)]
    _follower_events(conn, *(("new_follower", name) for name in names), ("lost_follower", "gone"))
    notifier = AlertNotifier(db_url, _settings(webhook, follower_digest_threshold=5))
    webhook.status = 500  # not delivered: every one of them stays due
    assert notifier.check() == []
    webhook.status = 204
    [digest] = notifier.check()
    assert digest.kind == "followers_digest"
    [body] = webhook.bodies[-1:]
    assert body["kind"] == "followers_digest"
    assert body["message"] == (
        "8 follower changes: 7 new (fan_0, fan_1, fan_2, fan_3, fan_4, ...); 1 lost (gone)"
    )
    assert notifier.check() == []  # the eight are done: never told one by one
    _follower_events(conn, ("new_follower", "late_fan"))  # under the threshold: one by one
    assert [n.subject for n in notifier.check()] == ["late_fan"]
    assert [b["kind"] for b in webhook.bodies] == [
        "followers_digest",
        "followers_digest",  # the failed delivery reached the hook too
        "new_follower",
    ]


def _tip(conn: Conn, event_id: str, username: str | None, tokens: int, *, anon: bool = False,
         message: str = "", minutes_ago: float = 1) -> None:  # fmt: skip
    at = _ago(minutes_ago)
    conn.execute("SELECT roomwatch_ensure_partitions('room_events', 'month', %s, %s)", [at, at])
    conn.execute(
        "INSERT INTO room_events (account, event_id, occurred_at, method, username, tokens,"
        " is_anon, message, raw) VALUES ('owner', %s, %s, 'tip', %s, %s, %s, %s, '{}')",
        [event_id, at, username, tokens, anon, message],
    )


def test_big_tips_over_the_threshold_only(conn: Conn, db_url: str, webhook: HttpRecorder) -> None:
    _tip(conn, "1-0", "whale", 1000, message="<b>ignore previous instructions</b>")
    _tip(conn, "2-0", "minnow", 499)
    _tip(conn, "3-0", "shy_one", 500, anon=True)
    _tip(conn, "4-0", "yesterday", 5000, minutes_ago=24 * 60)
    off = AlertNotifier(db_url, _settings(webhook, big_tip_tokens=0))
    assert off.check() == []
    notifier = AlertNotifier(db_url, _settings(webhook, big_tip_tokens=500))
    sent = notifier.check()
    assert [n.message for n in sent] == [
        "whale tipped 1000 tokens in owner's room",
        "anonymous tipped 500 tokens in owner's room",
    ]
    assert all("instructions" not in str(body) for body in webhook.bodies)
    assert all("shy_one" not in str(body) for body in webhook.bodies)
    assert notifier.check() == []
    assert len(webhook.bodies) == 2


def test_two_notifiers_at_once_tell_each_thing_once(
    conn: Conn, db_url: str, webhook: HttpRecorder
) -> None:
    set_watch(conn, [f"star_{n}" for n in range(6)], True)
    _poll(conn, 2, *(f"star_{n}" for n in range(6)))
    for n in range(6):
        _tip(conn, f"{n}-0", f"tipper_{n}", 1000)
    _follower_events(conn, ("new_follower", "fan_a"), ("new_follower", "fan_b"))
    notifiers = [AlertNotifier(db_url, _settings(webhook)) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[list[Any]] = [[], []]

    def check(number: int) -> None:
        start.wait()
        results[number] = notifiers[number].check()

    threads = [threading.Thread(target=check, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [n.key for found in results for n in found]
    assert len(keys) == len(set(keys)) == 6 + 6 + 2
    assert len(webhook.bodies) == 14
    assert sorted(_told(webhook, "went_live")) == [f"star_{n}" for n in range(6)]


@pytest.mark.parametrize(
    ("span", "zone", "moment", "quiet"),
    [
        ("23:00-07:00", "UTC", "2026-01-01T23:00:00+00:00", True),
        ("23:00-07:00", "UTC", "2026-01-02T06:59:00+00:00", True),
        ("23:00-07:00", "UTC", "2026-01-02T07:00:00+00:00", False),
        ("23:00-07:00", "UTC", "2026-01-01T22:59:00+00:00", False),
        ("09:00-17:00", "UTC", "2026-01-01T12:00:00+00:00", True),
        ("09:00-17:00", "UTC", "2026-01-01T17:00:00+00:00", False),
        # 23:30 UTC is 00:30 in Berlin (winter), 08:30 in Tokyo.
        ("00:00-01:00", "Europe/Berlin", "2026-01-01T23:30:00+00:00", True),
        ("00:00-01:00", "Asia/Tokyo", "2026-01-01T23:30:00+00:00", False),
        ("", "UTC", "2026-01-01T23:30:00+00:00", False),
    ],
)
def test_quiet_hours_span_midnight_in_their_zone(
    span: str, zone: str, moment: str, quiet: bool
) -> None:
    from storage.notices import in_quiet_hours

    settings = AlertsConfig(quiet_hours=span, timezone=zone)
    assert in_quiet_hours(dt.datetime.fromisoformat(moment), settings) is quiet
