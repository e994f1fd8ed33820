"""Imports flow inward (STYLE.md rule 1), checked by reading the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ["roomwatch", "storage", "sessions", "spiders", "agent", "control_api", "upstream_sim"]

# package -> top-level packages it must never import
FORBIDDEN = {
    "roomwatch": {"storage", "sessions", "spiders", "agent", "control_api", "upstream_sim"},
    "storage": {"sessions", "spiders", "agent", "control_api", "upstream_sim", "scrapy"},
    "sessions": {"spiders", "agent", "control_api", "upstream_sim"},
    "spiders": {"agent", "control_api", "psycopg", "psycopg_pool"},
    "control_api": {"scrapy", "spiders", "agent", "scrapy_playwright"},
    "upstream_sim": {"storage", "sessions", "spiders", "agent", "control_api"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_inward(package: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path) & FORBIDDEN[package]
    }
    assert not offenders


def test_every_package_is_checked() -> None:
    assert set(FORBIDDEN) | {"agent"} == set(PACKAGES)
