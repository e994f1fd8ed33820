"""Imports flow inward (STYLE.md rule 1), checked by reading the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = [
    "roomwatch",
    "storage",
    "formats",
    "sessions",
    "spiders",
    "crawler",
    "agent",
    "control_api",
    "web",
    "upstream_sim",
]

# package -> top-level packages it must never import
FORBIDDEN = {
    "roomwatch": {"storage", "sessions", "spiders", "agent", "control_api", "web", "upstream_sim"},
    "storage": {"sessions", "spiders", "agent", "control_api", "web", "upstream_sim", "scrapy"},
    "sessions": {"spiders", "agent", "control_api", "web", "upstream_sim"},
    "spiders": {"agent", "control_api", "web", "psycopg", "psycopg_pool"},
    "crawler": {"agent", "control_api", "web", "psycopg", "psycopg_pool"},
    "formats": {"spiders", "crawler", "agent", "control_api", "web", "upstream_sim", "scrapy"},
    "control_api": {"scrapy", "spiders", "agent", "scrapy_playwright", "web"},
    # The pages read through storage/ and the API's own helpers; they never crawl.
    "web": {"scrapy", "spiders", "agent", "scrapy_playwright", "sessions"},
    "upstream_sim": {"storage", "sessions", "spiders", "agent", "control_api", "web"},
}


# The one module of spiders/ that holds a database pool: the storage pipeline's (it lends
# connections to item writers); spider code itself never opens a connection.
# The app factory mounts the pages' router: the one module of the API that knows of web/.
ALLOWED = {("crawler/database.py", "psycopg_pool"), ("control_api/app.py", "web")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    # Imports under `if TYPE_CHECKING:` exist for annotations only.
    type_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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
        if (str(path.relative_to(ROOT)), name) not in ALLOWED
    }
    assert not offenders


def test_every_package_is_checked() -> None:
    assert set(FORBIDDEN) | {"agent"} == set(PACKAGES)


def test_test_modules_share_through_support_modules_and_conftest() -> None:
    """No test imports a conftest or another test module: shared helpers live in support
    modules (tests/support.py, tests/factories.py, tests/<package>/support.py...), shared
    fixtures in a conftest.py where pytest finds them."""
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for name in _modules(path)
        if name.startswith("tests.")
        and (name.rsplit(".", 1)[-1] == "conftest" or name.rsplit(".", 1)[-1].startswith("test_"))
    }
    assert not offenders


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
