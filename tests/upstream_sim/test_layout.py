"""One upstream, one subpackage: upstreams share the core, never each other's modules."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "upstream_sim"
UPSTREAMS = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
# The core modules that put the upstreams together: the app mounts their routers, the state
# holds their state objects, the server knows their URLs, the package re-exports their names.
COMPOSERS = {"__init__.py", "app.py", "server.py", "state.py"}


def _upstreams_imported(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            # ``from upstream_sim import affiliate`` names the subpackage after ``import``.
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    inside = {module.split(".")[1] for module in modules if module.startswith("upstream_sim.")}
    return inside & set(UPSTREAMS)


def test_the_upstreams_are_subpackages() -> None:
    assert UPSTREAMS == ["affiliate", "cbhours", "events", "site", "stats"]
    for upstream in UPSTREAMS:
        assert (PACKAGE / upstream / "router.py").is_file()


def test_an_upstream_never_imports_another() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)} imports {sorted(other)}"
        for upstream in UPSTREAMS
        for path in (PACKAGE / upstream).rglob("*.py")
        if (other := _upstreams_imported(path) - {upstream})
    }
    assert not offenders


def test_only_the_composers_of_the_core_import_upstreams() -> None:
    offenders = {
        path.name
        for path in PACKAGE.glob("*.py")
        if path.name not in COMPOSERS and _upstreams_imported(path)
    }
    assert not offenders
