"""Writes the settings the SQL side reads (``roomwatch_settings``) from the agent's config."""

from __future__ import annotations

from typing import Any

import psycopg

from roomwatch.config import Config


def sync_settings(conn: psycopg.Connection[Any], config: Config) -> None:
    """Makes the database agree with ``config`` (merge.recent_minutes for the merge view)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO roomwatch_settings (key, value) VALUES ('recent_interval', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [f"{config.merge.recent_minutes} minutes"],
        )
