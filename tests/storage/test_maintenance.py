"""Retention drops old raw partitions whole and keeps the rollups that summarise them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from roomwatch.config import DatabaseConfig
from storage.maintenance import apply_retention
from storage.records import AffiliateRoom
from storage.writers import write_affiliate_poll


def _room(name: str, viewers: int) -> AffiliateRoom:
    return AffiliateRoom(
        username=name,
        gender="f",
        location=None,
        current_show="public",
        room_subject=None,
        tags=["a"],
        is_new=False,
        num_users=viewers,
        num_followers=10,
        country=None,
        spoken_languages=None,
        display_name=None,
        birthday=None,
        is_hd=True,
        age=None,
        seconds_online=60,
        image_url=None,
        image_url_360x270=None,
        chat_room_url_revshare=None,
        iframe_embed_revshare=None,
        chat_room_url=None,
        iframe_embed=None,
        slug=name,
        raw=b"{}",
    )


def test_old_snapshots_go_whole_partitions_and_rollups_stay(db: psycopg.Connection[Any]) -> None:
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    for days_ago in (20, 15, 1):
        when = now - dt.timedelta(days=days_ago)
        write_affiliate_poll(db, [_room("a", 5), _room("b", 7)], observed_at=when)
    dropped = apply_retention(db, DatabaseConfig(snapshot_retention_days=14), now=now)
    assert dropped == ["affiliate_api_snapshots_p20261104", "affiliate_api_snapshots_p20261109"]
    left = db.execute("SELECT count(*) FROM affiliate_api_snapshots").fetchone()
    assert left == (2,)
    hours = db.execute("SELECT count(*), sum(samples) FROM affiliate_hourly").fetchone()
    assert hours == (6, 6)
    assert apply_retention(db, DatabaseConfig(snapshot_retention_days=14), now=now) == []
