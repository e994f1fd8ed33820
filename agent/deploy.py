"""``roomwatch deploy``: builds the project's egg and uploads it to every Scrapyd node.

- **The egg** is built the way ``scrapyd-deploy --build-egg`` builds it (``python setup.py
  clean -a`` then ``bdist_egg``; scrapy.cfg and the ``scrapy`` entry point name the settings
  module ``crawler.project``), from the checkout this roomwatch runs from, but in a copy of it:
  the checkout gets no ``build/`` or ``*.egg-info``.
- **The upload** is ``addversion.json`` (project ``scrapyd.project``) to each node of
  ``scrapyd.urls``, with its basic auth, through the runner's own client
  (:class:`agent.scrapyd_runner.ScrapydNode`); then ``listspiders.json`` says what the node
  can run now. Nodes are named by host and port only.
- **The version** is the Unix time, then the package version and the git commit
  (``1764755817_0_1_0_g25fd471a0c3e``), spelt as Scrapyd keeps it (it names the egg's file
  after the version with letters, digits, ``_`` and ``-`` only). Scrapyd runs the highest
  version it holds: by PEP 440 when every version it holds is one, else as text; the Unix time
  first sorts a deploy after the ones before it either way, ``scrapyd-deploy``'s included
  (its default version is the Unix time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.scrapyd_runner import ScrapydNode
from roomwatch import __version__
from roomwatch.config import Config
from roomwatch.errors import ConfigError, DeployError, ScrapydError

ROOT = Path(__file__).resolve().parents[1]
# Not copied to build the egg: what the egg does not carry, and what a build leaves behind.
_NOT_COPIED = (
    ".*",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "tests",
    "bench",
    "docs",
    "test-artifacts",
)
BUILD_TIMEOUT_SECONDS = 300
# addversion.json answers once the node has listed the egg's spiders (a process of its own).
UPLOAD_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class NodeDeploy:
    """What one node made of the upload: ``spiders`` it lists now, or the ``error``."""

    name: str
    spiders: int | None = None
    error: str | None = None


def build_egg(into: Path, root: Path = ROOT) -> Path:
    """The project's egg, ``into/roomwatch.egg``, built in a copy of ``root`` (a checkout:
    ``setup.py`` and ``scrapy.cfg`` at its top) made under ``into``.

    Raises:
        DeployError: ``root`` is not a checkout, or the build failed (its last line).
    """
    if not (root / "setup.py").is_file() or not (root / "scrapy.cfg").is_file():
        raise DeployError(
            f"{root} is not a checkout of roomwatch (no setup.py and scrapy.cfg): build the egg "
            "from one (docs/scaling.md)"
        )
    source = into / "project"
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    built = into / "dist"
    for command in (["clean", "-a"], ["bdist_egg", "-d", str(built)]):
        try:
            done = subprocess.run(
                [sys.executable, "setup.py", *command],
                cwd=source,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DeployError(
                f"setup.py {command[0]} took over {BUILD_TIMEOUT_SECONDS} s"
            ) from None
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise DeployError(f"the egg could not be built (setup.py {command[0]}): {last}")
    (egg,) = built.glob("*.egg")
    return egg.replace(into / "roomwatch.egg")


def egg_version(root: Path = ROOT, now: float | None = None) -> str:
    """The version an upload gets: ``UNIXTIME_PACKAGE_gCOMMIT`` (``_dirty`` with uncommitted
    changes; no commit outside git), with ``_`` for every character Scrapyd would replace."""
    parts = [str(int(time.time() if now is None else now)), __version__]
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        described = None
    if described is not None and described.returncode == 0:
        # A tag's describe (v0.1.0-3-gabc) or a bare commit (abc): the commit, and dirty.
        found = re.search(r"(?:^|-g)([0-9a-f]{7,40})(-dirty)?$", described.stdout.strip())
        if found:
            parts += [f"g{found[1]}", *(["dirty"] if found[2] else [])]
    return re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(parts))


def deploy_egg(config: Config, egg: bytes, version: str) -> list[NodeDeploy]:
    """Uploads ``egg`` as ``version`` to every node of ``scrapyd.urls`` (at once), in their
    order; a node that fails is reported, the others are still deployed."""
    settings = config.scrapyd
    timeout = max(settings.timeout_seconds, UPLOAD_TIMEOUT_SECONDS)

    def upload(url: str) -> NodeDeploy:
        node = ScrapydNode(url, settings)
        try:
            node.add_version(settings.project, version, egg, timeout)
            return NodeDeploy(node.name, spiders=len(node.spiders(settings.project, timeout)))
        except ScrapydError as exc:
            return NodeDeploy(node.name, error=str(exc))

    with ThreadPoolExecutor(max_workers=max(1, len(settings.urls))) as pool:
        return list(pool.map(upload, settings.urls))


def deploy_command(config: Config, build_egg_to: str | None = None) -> int:
    """``roomwatch deploy [--build-egg FILE]``: one line per node, 1 if any node failed.

    Raises:
        ConfigError: not ``runner = "scrapyd"``, or no node in ``scrapyd.urls``.
        DeployError: the egg could not be built.
    """
    if build_egg_to is None and (config.runner != "scrapyd" or not config.scrapyd.urls):
        raise ConfigError(
            f'roomwatch deploy uploads to the nodes of runner = "scrapyd" (runner is '
            f"{config.runner!r}, {len(config.scrapyd.urls)} node(s) in scrapyd.urls): set "
            "ROOMWATCH_RUNNER=scrapyd and ROOMWATCH_SCRAPYD_URLS (docs/scaling.md)"
        )
    with tempfile.TemporaryDirectory(prefix="roomwatch-egg-") as folder:
        egg = build_egg(Path(folder))
        if build_egg_to is not None:
            shutil.copyfile(egg, build_egg_to)
            print(f"egg written to {build_egg_to}")
            return 0
        data = egg.read_bytes()
    version = egg_version()
    project = config.scrapyd.project
    results = deploy_egg(config, data, version)
    for result in results:
        if result.error is None:
            print(f"{result.name}: {project} {version} deployed, {result.spiders} spiders")
    failed = [result for result in results if result.error is not None]
    if failed:
        print(
            f"roomwatch: deploy failed on {len(failed)} of {len(results)} nodes:", file=sys.stderr
        )
        for result in failed:
            print(f"  {result.name}: {result.error}", file=sys.stderr)
        return 1
    return 0
