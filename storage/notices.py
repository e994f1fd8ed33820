"""Notices: news the owner may like to hear at once, but need not act on (a watched person went
live, a new or lost follower, a big tip).

Unlike the alerts of ``storage/alerts.py`` they are not conditions in force, so ``/status`` does
not list them: only the notifier (``agent/alerts.py``) reads them. Like alerts they are derived
from the tables on every read, each with a key naming its occurrence, and sent once through the
same claims (``alert_notifications``); a read leaves out the keys already sent. Only what
happened within :data:`WINDOW` is news: a first start, or a notifier back after a while, does
not tell the past.

* ``went_live``: a broadcast of ``person_broadcasts`` (migration 0017: the merged live state's
  sightings online, one row per broadcast) of a person watched or followed and not muted.
* ``new_follower``/``lost_follower``: a ``follow_events`` row of the Events API stream (source
  ``events_api``); :func:`followers_digest` folds many of them into one ``followers_digest``.
* ``big_tip``: a ``tip`` of ``room_events`` of at least ``alerts.big_tip_tokens`` tokens. Its
  note is the tipper's free text and is left out.

Usernames and account names come from upstream: a message shows them through :func:`shown`. With
several accounts a follower notice (and each name of a digest) says whose follower it is.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal, get_args

import msgspec
import psycopg

from roomwatch.config import AlertsConfig, quiet_span, time_zone

NoticeKind = Literal["went_live", "new_follower", "lost_follower", "followers_digest", "big_tip"]

WINDOW = dt.timedelta(hours=1)
"""How old a thing may be and still be news."""

DIGEST_NAMES = 5
"""How many names a digest lists per kind."""

# Broadcasts begun within the window, announced, of a person watched or followed and not
# muted; each person's newest only (an older one is over: after a notifier's absence, or an
# unmute, only the broadcast under way is news).
WENT_LIVE = """
SELECT b.broadcast_id, p.username, b.started_at, p.watch, p.following IS TRUE
FROM person_broadcasts b JOIN persons p USING (person_id)
WHERE b.started_at >= now() - %(window)s::interval AND b.announce
  AND NOT EXISTS (SELECT 1 FROM person_broadcasts later
                  WHERE later.person_id = b.person_id AND later.started_at > b.started_at)
  AND (p.watch OR p.following IS TRUE) AND NOT p.alerts_muted
  AND NOT EXISTS (SELECT 1 FROM alert_notifications n
                  WHERE n.alert_key = 'went_live:' || b.broadcast_id AND n.sent_at IS NOT NULL)
ORDER BY b.started_at, b.broadcast_id
"""

# Followers gained and lost as the Events API told them (not the crawls' reconciliations: those
# are late by nature), in the order they were stored; with the account, and whether the install
# has several (then a message names the account).
FOLLOWER_EVENTS = """
SELECT e.event_id, e.kind, p.username, e.occurred_at, e.account,
       (SELECT count(*) > 1 FROM accounts) AS several
FROM follow_events e JOIN persons p USING (person_id)
WHERE e.source = 'events_api' AND e.kind IN ('new_follower', 'lost_follower')
  AND e.occurred_at >= now() - %(window)s::interval
  AND NOT EXISTS (SELECT 1 FROM alert_notifications n
                  WHERE n.alert_key = e.kind || ':' || e.event_id AND n.sent_at IS NOT NULL)
ORDER BY e.event_id
"""

BIG_TIPS = """
SELECT t.account, t.event_id, t.occurred_at, t.username, t.tokens, t.is_anon IS TRUE
FROM room_events t
WHERE t.method = 'tip' AND t.tokens >= %(tokens)s
  AND t.occurred_at >= now() - %(window)s::interval
  AND NOT EXISTS (SELECT 1 FROM alert_notifications n
                  WHERE n.alert_key = 'big_tip:' || t.account || ':' || t.event_id
                    AND n.sent_at IS NOT NULL)
ORDER BY t.occurred_at, t.event_id
"""


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """Something the owner may like to know at once.

    Attributes:
        kind: ``went_live``, ``new_follower``, ``lost_follower``, ``followers_digest`` or
            ``big_tip``.
        subject: the person (or the room, for a tip; the count, for a digest) it is about.
        message: one line for people.
        account: the account a follower notice is about, as shown (:func:`shown`), when the
            install has several; None with one (the message need not say whose).
        since: when it happened (the broadcast's first sighting, the event).
        key: names this occurrence; the notifier tells each key once.
    """

    kind: NoticeKind
    subject: str
    message: str
    since: dt.datetime | None
    key: str
    account: str | None = None


class Notices(msgspec.Struct, frozen=True, kw_only=True):
    """What a read found, by the way the notifier treats it.

    Attributes:
        went_live: subject to quiet hours.
        followers: one by one, or as one digest.
        big_tips: one by one.
    """

    went_live: list[Notice]
    followers: list[Notice]
    big_tips: list[Notice]


def shown(name: str | None) -> str:
    """A username from upstream as a message shows it: letters, digits and ``_.-`` only, at
    most 64 of them (anything else is ``?``); no name is "someone"."""
    if not name:
        return "someone"
    return re.sub(r"[^A-Za-z0-9_.-]", "?", name[:64])


def read_notices(conn: psycopg.Connection[Any], settings: AlertsConfig) -> Notices:
    """The notices within :data:`WINDOW` not sent yet."""
    window = {"window": WINDOW}
    went_live = [
        Notice(
            kind="went_live",
            subject=shown(username),
            message=f"{shown(username)} went live ("
            + ", ".join(why for why, on in (("watched", watch), ("followed", following)) if on)
            + ")",
            since=started_at,
            key=f"went_live:{broadcast_id}",
        )
        for broadcast_id, username, started_at, watch, following in conn.execute(WENT_LIVE, window)
    ]
    followers = [
        _follower_notice(event_id, kind, username, occurred_at, shown(account) if several else None)
        for event_id, kind, username, occurred_at, account, several in conn.execute(
            FOLLOWER_EVENTS, window
        )
    ]
    big_tips: list[Notice] = []
    if settings.big_tip_tokens > 0:
        big_tips = [
            Notice(
                kind="big_tip",
                subject=shown(account),
                message=f"{'anonymous' if anonymous else shown(username)} tipped {tokens} tokens "
                f"in {shown(account)}'s room",
                since=occurred_at,
                key=f"big_tip:{account}:{event_id}",
            )
            for account, event_id, occurred_at, username, tokens, anonymous in conn.execute(
                BIG_TIPS, {**window, "tokens": settings.big_tip_tokens}
            )
        ]
    return Notices(went_live=went_live, followers=followers, big_tips=big_tips)


def _follower_notice(
    event_id: int, kind: NoticeKind, username: str, occurred_at: dt.datetime, account: str | None
) -> Notice:
    """A new or lost follower; ``account`` (several accounts) is named after the news."""
    news = "now follows you" if kind == "new_follower" else "no longer follows you"
    return Notice(
        kind=kind,
        subject=shown(username),
        message=f"{shown(username)} {news}" + (f" ({account})" if account else ""),
        since=occurred_at,
        key=f"{kind}:{event_id}",
        account=account,
    )


# Claims of notices sent (or held back) long enough ago that no read can find them again: a
# notice's time is before its claim was marked, and reads go back WINDOW only. Alert claims stay
# (their alerts may still be in force).
FORGET = """
DELETE FROM alert_notifications
WHERE sent_at < now() - 2 * %(window)s::interval AND split_part(alert_key, ':', 1) = ANY(%(kinds)s)
"""


def forget_old_notices(conn: psycopg.Connection[Any]) -> int:
    """Deletes the claims of notices past :data:`WINDOW` (twice over); returns how many."""
    with conn.transaction():
        cursor = conn.execute(FORGET, {"window": WINDOW, "kinds": list(get_args(NoticeKind))})
    return cursor.rowcount


def followers_digest(notices: list[Notice]) -> Notice:
    """One notice for many follower notices: how many of each kind, and the first names (each
    with its account, ``name (account)``, when the install has several)."""
    parts = []
    for kind, word in (("new_follower", "new"), ("lost_follower", "lost")):
        names = [
            f"{n.subject} ({n.account})" if n.account else n.subject
            for n in notices
            if n.kind == kind
        ]
        if names:
            more = ", ..." if len(names) > DIGEST_NAMES else ""
            parts.append(f"{len(names)} {word} ({', '.join(names[:DIGEST_NAMES])}{more})")
    return Notice(
        kind="followers_digest",
        subject=f"{len(notices)} follower changes",
        message=f"{len(notices)} follower changes: {'; '.join(parts)}",
        since=min((n.since for n in notices if n.since is not None), default=None),
        key=f"followers_digest:{notices[0].key}..{notices[-1].key}:{len(notices)}",
    )


def in_quiet_hours(moment: dt.datetime, settings: AlertsConfig) -> bool:
    """Whether ``moment`` falls in ``alerts.quiet_hours`` (in ``alerts.timezone``)."""
    span = quiet_span(settings.quiet_hours)
    if span is None:
        return False
    start, end = span
    local = moment.astimezone(time_zone(settings.timezone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight
