"""Writes the settings the SQL side reads (``roomwatch_settings``) from the agent's config."""

from __future__ import annotations

from typing import Any

import psycopg

from roomwatch.config import Config
from storage.accounts import add_account


def sync_settings(conn: psycopg.Connection[Any], config: Config) -> None:
    """Makes the database agree with ``config``: merge.recent_minutes for the merge view,
    alerts.live_gap_minutes for the broadcasts of ``person_broadcasts``, and the accounts
    ``events.url`` and ``stats.url`` name (so their streams' jobs and schedules can be theirs)."""
    settings = {
        "recent_interval": f"{config.merge.recent_minutes} minutes",
        "broadcast_gap": f"{config.alerts.live_gap_minutes} minutes",
    }
    with conn.transaction():
        for key, value in settings.items():
            conn.execute(
                "INSERT INTO roomwatch_settings (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
        register_stream_accounts(conn, config)


def register_stream_accounts(conn: psycopg.Connection[Any], config: Config) -> None:
    """Records the accounts ``events.url`` and ``stats.url`` name, so their streams' jobs and
    schedules can be theirs (whoever queues such a job first: the agent, a crawl command)."""
    for account in {**config.events.streams, **config.stats.streams}:
        add_account(conn, account)
