"""The repository alone passes its tests: no test or bench reads files outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The reference samples next to the repository, and the development machine's folders.
OUTSIDE = re.compile(r"shared/reference|\.\./shared|[\"']/work/|parents\[[3-9]\]")


def test_tests_and_benches_read_nothing_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == [], "use tests/fixtures/ (see its README.md):\n" + "\n".join(offenders)
