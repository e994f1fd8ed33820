"""Imports flow inward (STYLE.md rule 1), checked by reading the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from roomwatch.catalog import SPIDERS

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

# The packages that do a part of the crawl, serve or run things: nothing inner imports them.
OUTER = {"sessions", "spiders", "crawler", "agent", "control_api", "web", "upstream_sim"}
NEVER_SCRAPY = {"scrapy", "scrapy_playwright", "spiders", "crawler", "agent"}

# package -> top-level packages it must never import
FORBIDDEN = {
    "roomwatch": set(PACKAGES) - {"roomwatch"},
    "storage": OUTER | {"formats", "scrapy"},
    # The upstreams' formats: pure decoders and parsers, no I/O (no browser, no database).
    "formats": OUTER | {"scrapy", "playwright", "psycopg", "psycopg_pool"},
    "sessions": OUTER - {"sessions"},
    "spiders": {"agent", "control_api", "web", "psycopg", "psycopg_pool"},
    "crawler": {"agent", "control_api", "web", "psycopg", "psycopg_pool"},
    "control_api": NEVER_SCRAPY | {"web"},
    # The pages read through storage/ and the API's own helpers; they never crawl.
    "web": NEVER_SCRAPY | {"sessions"},
    "upstream_sim": set(PACKAGES) - {"roomwatch", "upstream_sim"},
}


# The crawl's pool (crawler/database.py) is the one module of the crawl that holds database
# connections: the storage pipeline and the job reporter borrow them; spiders never do.
# The app factory mounts the pages' router: the one module of the API that knows of web/.
ALLOWED = {("crawler/database.py", "psycopg_pool"), ("control_api/app.py", "web")}

# What of storage/ is plain data (records and the literal types they use): anyone may hold it.
STORAGE_TYPES: dict[str, set[str] | None] = {
    "storage.records": None,  # every name
    "storage.follow_state": {"RoomObservation", "Relation", "FollowSource", "CountCheck"},
    "storage.login_sessions": {"Status"},
    "storage.images": {"Thumbnail"},
}
# Beyond those types, the storage/ modules each part of the crawl may import (by path prefix).
# Only the storage pipeline imports the writers of what a crawl reads.
STORAGE_ACCESS: dict[str, set[str] | None] = {
    "formats/": set(),
    "spiders/": {"storage.targets"},  # reads, in prepare(), with the crawl process's connection
    "crawler/items.py": set(),
    "crawler/middlewares.py": {"storage.pace"},  # the shared pace, on the pool's connections
    "crawler/pipelines.py": None,  # item type -> writer
    "crawler/database.py": {"storage.database"},  # the pool
    "crawler/extensions.py": {"storage.jobs"},  # the job row's progress
    "crawler/account_lock.py": {"storage.browser_lock"},  # one browser per account
    "crawler/crawl.py": {"storage.database", "storage.embedded", "storage.jobs"},  # the job
    "crawler/settings.py": {"storage.images"},  # where thumbnails are kept
    "crawler/images.py": {"storage.images"},
    "crawler/project.py": set(),  # the Scrapy project's settings module: names only
    # `scrapy crawl`: its job, of the accounts its config names
    "crawler/commands/": {"storage.database", "storage.jobs", "storage.settings"},
}
# The crawl's own modules a spider may import: items and the shared request helpers, never
# the storage side (pipelines, pool) or the process entry.
SPIDER_MAY_IMPORT = {"crawler.items", "crawler.middlewares", "crawler.settings"}
# spiders/ holds spiders (a spider's name is its module's) and the bases they share.
SPIDER_BASES = {"__init__", "base", "cbhours_api", "logged_in"}


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


def test_only_the_storage_pipeline_imports_storage_writers() -> None:
    """Items are plain data; formats hold records; spiders read their inputs in prepare();
    every write of what a crawl reads goes through crawler/pipelines.py."""
    offenders = set()
    for prefix, access in STORAGE_ACCESS.items():
        for path in sorted(ROOT.glob(f"{prefix}*.py" if prefix.endswith("/") else prefix)):
            for module, names in _from_imports(path):
                if not module.startswith("storage") or access is None or module in access:
                    continue
                types = STORAGE_TYPES.get(module, set())
                if types is None or (types and names <= types):
                    continue
                offenders.add(f"{path.relative_to(ROOT)} imports {sorted(names)} from {module}")
    assert not offenders
    crawl_modules = {str(p.relative_to(ROOT)) for p in (ROOT / "crawler").glob("*.py")}
    assert crawl_modules - {"crawler/__init__.py"} <= set(STORAGE_ACCESS)


def test_spiders_import_items_not_the_storage_side_of_the_crawl() -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in (ROOT / "spiders").glob("*.py")
        for module, _ in _from_imports(path)
        if module.startswith("crawler") and module not in SPIDER_MAY_IMPORT
    }
    assert not offenders


def test_spiders_holds_spider_modules_only() -> None:
    """Each module is a spider whose ``name`` is the module's name, or a shared base; wire
    formats are decoded in formats/, never in a spider (no msgspec decoder of its own)."""
    for path in (ROOT / "spiders").glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = {
            node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and [ast.unparse(target) for target in node.targets] == ["name"]
            and isinstance(node.value, ast.Constant)
        }
        assert path.stem in SPIDER_BASES or names == {path.stem}, path.name
        assert "msgspec.json.Decoder" not in path.read_text(), path.name
    assert set(SPIDERS) <= {path.stem for path in (ROOT / "spiders").glob("*.py")}


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


def _from_imports(path: Path) -> list[tuple[str, set[str]]]:
    """``from X import a, b`` statements as (X, {a, b}), ``import X`` as (X, {"*"})."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, {alias.name for alias in node.names}))
        elif isinstance(node, ast.Import):
            found += [(alias.name, {"*"}) for alias in node.names]
    return found


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


# Where a connection may be opened (storage.database's connect, connect_async, make_pool,
# make_async_pool, open_database): the process entries and what they own. Everything else gets
# a connection passed in. The API opens only its lifespan pool, plus the one connection the
# person cache LISTENs on (a LISTEN needs a session of its own, outside the pool).
OPENS_CONNECTIONS = (
    "agent/",
    "crawler/crawl.py",
    "crawler/commands/crawl.py",  # `scrapy crawl`, a process entry too
    "crawler/database.py",
    "storage/",
)
OPENS_CONNECTIONS_FILES = {"control_api/app.py", "control_api/person_cache.py"}
_OPENERS = {"connect", "connect_async", "make_pool", "make_async_pool", "open_database"}
_RUNS_SQL = {"execute", "executemany", "copy", "stream"}


def _source_files() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path)))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    ]


def test_sql_runs_only_in_storage() -> None:
    """Every statement is a storage/ function: no module elsewhere calls ``execute``,
    ``executemany``, ``copy`` or ``stream`` on a connection or cursor (a process entry that
    needs a lock or a LISTEN calls storage.database's ``try_lock`` or ``listen``)."""
    offenders = {
        f"{name}:{node.lineno} calls .{node.func.attr}()"
        for name, tree in _source_files()
        if not name.startswith("storage/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _RUNS_SQL
    }
    assert not offenders


def test_connections_are_opened_by_process_entries_only() -> None:
    """psycopg is asked for a connection or a pool only in storage/database.py (and the
    embedded server's set-up), and storage.database's openers are called only where a process
    starts (the CLI, the agent, the crawl process, the API's lifespan)."""
    direct = {
        f"{name}:{node.lineno}"
        for name, tree in _source_files()
        if name not in {"storage/database.py", "storage/embedded.py"}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and ast.unparse(node.func.value)
                in {
                    "psycopg",
                    "psycopg.Connection",
                    "psycopg.AsyncConnection",
                    "AsyncConnection",
                    "Connection",
                }
            )
            or (
                isinstance(node.func, ast.Name)
                and node.func.id in {"ConnectionPool", "AsyncConnectionPool"}
            )
        )
    }
    assert not direct
    openers = {
        f"{name} imports {alias.name}"
        for name, tree in _source_files()
        if not name.startswith(OPENS_CONNECTIONS) and name not in OPENS_CONNECTIONS_FILES
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "storage.database"
        for alias in node.names
        if alias.name in _OPENERS
    }
    assert not openers
