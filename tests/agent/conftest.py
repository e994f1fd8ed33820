"""Fixtures of the agent tests: loopback endpoints the alerts are delivered to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import HttpRecorder


@pytest.fixture
def webhook() -> Iterator[HttpRecorder]:
    """An alert webhook (answers 204)."""
    with HttpRecorder(status=204) as hook:
        yield hook


@pytest.fixture
def endpoint() -> Iterator[HttpRecorder]:
    """An Apprise ``json://`` target (answers 200)."""
    with HttpRecorder(status=200) as target:
        yield target
