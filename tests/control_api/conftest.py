"""Fixtures for the control API tests: a client of the real app (``app``, tests/conftest.py) on
a fresh migrated database (its test data comes from tests/factories.py).

Data goes in through the storage writers the pipelines use, so the API is tested on rows shaped
exactly like production ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.factories import AUTH


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A client that sends the bearer token (the lifespan, hence the pool, runs around it)."""
    with TestClient(app) as test_client:
        test_client.headers.update(AUTH)
        yield test_client
