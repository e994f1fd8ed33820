"""Alerts: conditions an owner must act on (an expired session, a spider that keeps failing,
a follow list whose mass change is held until the owner confirms it).

They are derived from the tables on every read, never stored, so an alert clears itself when
its cause goes away (a new session, a successful crawl). What *is* stored is which alerts were
already sent to the webhook (``alert_notifications``): each alert has a key naming its
occurrence, and claiming that key is one statement, so two agents or a restart never send
twice. A claim is marked sent once delivered; a claim neither sent nor released within
:data:`CLAIM_TIMEOUT` (its holder died, or failed in a way it could not clean up after) may be
taken again, so an alert is late rather than lost. Times are the database's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec
import psycopg

from roomwatch.catalog import SPIDERS
from roomwatch.errors import TOKEN_REFUSED
from storage.follow_guard import HELD

AlertKind = Literal["session_expired", "spider_failing", "follow_change_held", "token_refused"]

CLAIM_TIMEOUT = dt.timedelta(minutes=10)
"""Longer than any delivery takes (each target times out after 10 seconds), short enough that
an alert whose sender died goes out the same quarter of an hour."""

# Expired sessions that no later, not-expired session of the same account has replaced.
EXPIRED_SESSIONS = """
SELECT s.session_id, s.account, s.last_verified_at FROM login_sessions s
WHERE s.status = 'expired' AND NOT EXISTS (
    SELECT 1 FROM login_sessions n
    WHERE n.account = s.account AND n.status <> 'expired' AND n.captured_at > s.captured_at)
ORDER BY s.session_id
"""

# Spiders whose newest n finished crawls (succeeded or failed; cancelled and interrupted ones
# say nothing about the spider) all failed; first_failed_job is where the streak began.
FAILING_SPIDERS = """
SELECT s.spider, streak.first_failed_job, streak.since, recent.last_error
FROM unnest(%(spiders)s::text[]) AS s(spider)
CROSS JOIN LATERAL (
    SELECT count(*) AS n, bool_and(status = 'failed') AS all_failed,
           (array_agg(error_message ORDER BY job_id DESC))[1] AS last_error
    FROM (SELECT job_id, status, error_message FROM crawl_jobs j
          WHERE j.spider = s.spider AND j.status IN ('succeeded', 'failed')
          ORDER BY j.job_id DESC LIMIT %(n)s) last_n
) recent
CROSS JOIN LATERAL (
    SELECT min(job_id) AS first_failed_job, min(finished_at) AS since FROM crawl_jobs f
    WHERE f.spider = s.spider AND f.status = 'failed' AND f.job_id > coalesce(
        (SELECT max(job_id) FROM crawl_jobs o WHERE o.spider = s.spider
         AND o.status = 'succeeded'), 0)
) streak
WHERE recent.n = %(n)s AND recent.all_failed
ORDER BY s.spider
"""


# Follow crawls whose newest finished crawl was held by the mass-change guard: one crawl is
# enough (a list about to be wiped is news at once); a later successful crawl clears it.
# The key names the first held crawl since the last success, so a scheduled crawl held again
# every hour is one alert, not one per crawl.
HELD_FOLLOW_CHANGES = f"""
SELECT j.spider, j.job_id, j.finished_at, j.error_message, streak.first_held
FROM unnest(ARRAY['followed_cams', 'followers']) AS s(spider)
CROSS JOIN LATERAL (
    SELECT job_id, spider, status, finished_at, error_message FROM crawl_jobs c
    WHERE c.spider = s.spider AND c.status IN ('succeeded', 'failed')
    ORDER BY c.job_id DESC LIMIT 1
) j
CROSS JOIN LATERAL (
    SELECT min(job_id) AS first_held FROM crawl_jobs f
    WHERE f.spider = s.spider AND f.status = 'failed' AND strpos(f.error_message, '{HELD}') > 0
      AND f.job_id > coalesce(
          (SELECT max(job_id) FROM crawl_jobs o WHERE o.spider = s.spider
           AND o.status = 'succeeded'), 0)
) streak
WHERE j.status = 'failed' AND strpos(j.error_message, '{HELD}') > 0
ORDER BY j.spider
"""


# Spiders whose newest finished crawl failed because an owner's API refused the token (the
# Events or Stats API, HTTP 401/403): one crawl is enough, waiting will not fix it. The key
# names the first such crawl since the last success, so a stream restarted (with its back-off)
# and refused again is one alert; a success clears it.
TOKEN_REFUSALS = f"""
SELECT s.spider, j.job_id, j.finished_at, j.error_message, streak.first_refused
FROM unnest(%(spiders)s::text[]) AS s(spider)
CROSS JOIN LATERAL (
    SELECT job_id, status, finished_at, error_message FROM crawl_jobs c
    WHERE c.spider = s.spider AND c.status IN ('succeeded', 'failed')
    ORDER BY c.job_id DESC LIMIT 1
) j
CROSS JOIN LATERAL (
    SELECT min(job_id) AS first_refused FROM crawl_jobs f
    WHERE f.spider = s.spider AND f.status = 'failed'
      AND strpos(f.error_message, '{TOKEN_REFUSED}') > 0
      AND f.job_id > coalesce(
          (SELECT max(job_id) FROM crawl_jobs o WHERE o.spider = s.spider
           AND o.status = 'succeeded'), 0)
) streak
WHERE j.status = 'failed' AND strpos(j.error_message, '{TOKEN_REFUSED}') > 0
ORDER BY s.spider
"""


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """Something the owner should act on.

    Attributes:
        kind: ``session_expired``, ``spider_failing``, ``follow_change_held`` or
            ``token_refused``.
        subject: the session (``session 3``) or spider it is about.
        message: one line for people.
        since: when it started (the failed verification, the first failed crawl).
        key: names this occurrence; a webhook hears about each key once.
    """

    kind: AlertKind
    subject: str
    message: str
    since: dt.datetime | None
    key: str


def alert_params(failures_in_a_row: int) -> dict[str, Any]:
    """Parameters of :data:`FAILING_SPIDERS`."""
    return {"spiders": list(SPIDERS), "n": failures_in_a_row}


def _job_alerts(kind: AlertKind, rows: list[tuple[Any, ...]]) -> list[Alert]:
    """One alert per streak of a job outcome (``spider, job_id, finished_at, message, first``)."""
    return [
        Alert(
            kind=kind,
            subject=spider,
            message=f"{spider} job {job_id}: {message}",
            since=finished_at,
            key=f"{kind}:{spider}:{first}",
        )
        for spider, job_id, finished_at, message, first in rows
    ]


def build_alerts(
    sessions: list[tuple[Any, ...]],
    failing: list[tuple[Any, ...]],
    failures_in_a_row: int,
    held: list[tuple[Any, ...]] | None = None,
    refused: list[tuple[Any, ...]] | None = None,
) -> list[Alert]:
    """Turns the rows of :data:`EXPIRED_SESSIONS`, :data:`FAILING_SPIDERS`,
    :data:`HELD_FOLLOW_CHANGES` and :data:`TOKEN_REFUSALS` into alerts."""
    alerts = [
        Alert(
            kind="session_expired",
            subject=f"session {session_id}",
            message=f"login session {session_id} ({account}) has expired: log in again "
            "(roomwatch login)",
            since=verified_at,
            key=f"session_expired:{session_id}",
        )
        for session_id, account, verified_at in sessions
    ]
    # A spider whose token was refused is that alert only: its failure streak says nothing more.
    refused_spiders = {row[0] for row in refused or []}
    alerts += [
        Alert(
            kind="spider_failing",
            subject=spider,
            message=f"{spider} failed {failures_in_a_row} times in a row"
            + (f"; last error: {last_error}" if last_error else ""),
            since=since,
            key=f"spider_failing:{spider}:{first_job}",
        )
        for spider, first_job, since, last_error in failing
        if spider not in refused_spiders
    ]
    alerts += _job_alerts("follow_change_held", held or [])
    alerts += _job_alerts("token_refused", refused or [])
    return alerts


def read_alerts(conn: psycopg.Connection[Any], failures_in_a_row: int) -> list[Alert]:
    """The alerts in force now."""
    sessions = conn.execute(EXPIRED_SESSIONS).fetchall()
    failing = conn.execute(FAILING_SPIDERS, alert_params(failures_in_a_row)).fetchall()
    held = conn.execute(HELD_FOLLOW_CHANGES).fetchall()
    refused = conn.execute(TOKEN_REFUSALS, {"spiders": list(SPIDERS)}).fetchall()
    return build_alerts(sessions, failing, failures_in_a_row, held, refused)


def claim_notification(
    conn: psycopg.Connection[Any], key: str, timeout: dt.timedelta = CLAIM_TIMEOUT
) -> bool:
    """True for whoever should send the notification: once per key, or again once an unsent
    claim is older than ``timeout``."""
    with conn.transaction():
        cur = conn.execute(
            """
            INSERT INTO alert_notifications AS n (alert_key) VALUES (%s)
            ON CONFLICT (alert_key) DO UPDATE SET claimed_at = now()
            WHERE n.sent_at IS NULL AND n.claimed_at < now() - %s::interval
            """,
            [key, timeout],
        )
    return cur.rowcount == 1


def mark_notification_sent(conn: psycopg.Connection[Any], key: str) -> None:
    """Records that every target has the notification: the claim never expires."""
    with conn.transaction():
        conn.execute("UPDATE alert_notifications SET sent_at = now() WHERE alert_key = %s", [key])


def release_notification(conn: psycopg.Connection[Any], key: str) -> None:
    """Forgets a claim whose notification could not be delivered, so it is tried again."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM alert_notifications WHERE alert_key = %s AND sent_at IS NULL", [key]
        )
