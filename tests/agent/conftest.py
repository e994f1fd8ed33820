"""Agent tests crawl against the simulator with the same fixtures as the spider tests."""

from __future__ import annotations

from tests.spiders.conftest import crawl_env, sim

__all__ = ["crawl_env", "sim"]
