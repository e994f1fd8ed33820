"""Fixtures for the control API tests: the real app on a fresh migrated database, and test data.

Data goes in through the storage writers the pipelines use, so the API is tested on rows shaped
exactly like production ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.app import create_app
from roomwatch.config import load_config
from storage.records import AffiliateRoom, CbhoursLive

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(db_url: str) -> Litestar:
    """The control API over this test's own database."""
    return create_app(load_config({}), db_url, TOKEN, "test")


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A client that sends the bearer token (the lifespan, hence the pool, runs around it)."""
    with TestClient(app) as test_client:
        test_client.headers.update(AUTH)
        yield test_client


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for writers and direct setup statements."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def room(username: str, **fields: Any) -> AffiliateRoom:
    """An Affiliate room object with plausible defaults; ``raw`` mirrors the fields."""
    values: dict[str, Any] = {
        "username": username,
        "gender": "f",
        "location": "Somewhere",
        "current_show": "public",
        "room_subject": f"{username}'s room",
        "tags": [],
        "is_new": False,
        "num_users": 10,
        "num_followers": 100,
        "country": "US",
        "spoken_languages": "English",
        "display_name": username.title(),
        "birthday": dt.date(2000, 1, 2),
        "is_hd": True,
        "age": 25,
        "seconds_online": 60,
        "image_url": f"https://img.example/{username}.jpg",
        "image_url_360x270": None,
        "chat_room_url_revshare": None,
        "iframe_embed_revshare": None,
        "chat_room_url": None,
        "iframe_embed": None,
        "slug": username,
    }
    values.update(fields)
    raw = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()}
    return AffiliateRoom(**values, raw=msgspec.json.encode(raw))


def live(username: str, online: bool = True, **fields: Any) -> CbhoursLive:
    """A CBHours ``get_live`` model; offline rows carry only the status, like upstream."""
    if not online:
        return CbhoursLive(username=username, room_status="Offline", raw=b'{"room_status":"x"}')
    values: dict[str, Any] = {
        "gender": "Female",
        "rank": 100,
        "grank": 50,
        "viewers": 20,
        "followers": 200,
        "current_show": "public",
        "room_subject": "hi",
        "tags": [],
        "is_new": False,
    }
    values.update(fields)
    raw = msgspec.json.encode({"room_status": "Online", "username": username, **values})
    return CbhoursLive(username=username, room_status="Online", raw=raw, **values)
