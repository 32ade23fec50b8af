"""Print requirements.lock without the packages that only development and tests need.

    python deploy/docker/runtime_requirements.py requirements.lock deploy/docker/dev-only.txt

The Dockerfile installs the result with `pip install --no-deps` and then runs `pip check`, so a
runtime package missing here fails the image build, not production. tests/deploy checks the same
offline: every package the runtime's direct dependencies need (transitively) is kept.
Standard library only: it runs in the build stage before any virtualenv exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution name of a requirements line (None for comments and blank lines)."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return canonical(match.group(0)) if match else None


def read_names(path: Path) -> set[str]:
    return {name for line in path.read_text().splitlines() if (name := requirement_name(line))}


def runtime_lines(lock: Path, dev_only: Path) -> list[str]:
    excluded = read_names(dev_only)
    return [
        line.strip()
        for line in lock.read_text().splitlines()
        if (name := requirement_name(line)) is not None and name not in excluded
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(runtime_lines(Path(argv[0]), Path(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
