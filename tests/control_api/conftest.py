"""Fixtures for the control API tests: the real app on a fresh migrated database (its test data
comes from tests/factories.py).

Data goes in through the storage writers the pipelines use, so the API is tested on rows shaped
exactly like production ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from control_api.app import create_app
from roomwatch.config import load_config
from tests.factories import AUTH, TOKEN


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
