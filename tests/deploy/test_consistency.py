"""What docker-compose.yml and the Kubernetes manifests say about each process matches what the
code reads: commands and ports, probe paths the apps serve, environment variable names that are
settings of the right class, the required settings present, values that parse, and connection
URLs that point at the right database, role and servers."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.deploy.support import (
    BASE,
    HELPER_VARS,
    PORTS,
    PRODUCTION,
    SERVICES,
    Process,
    all_processes,
    allowed_env,
    compose,
    db_url_parts,
    env_names,
    find,
    rendered,
    serves,
    settings_class,
)

PROCESSES = all_processes()
IDS = [f"{p.source}:{p.name}" for p in PROCESSES]
APPS = [p for p in PROCESSES if p.kind != "migrate"]
APP_IDS = [f"{p.source}:{p.name}" for p in APPS]
MIGRATIONS = [p for p in PROCESSES if p.kind == "migrate"]
JWKS_URL = f"http://stakeholders:{PORTS['stakeholders']}/.well-known/jwks.json"


def test_every_source_describes_every_process() -> None:
    for source in ("compose", "k8s:base", "k8s:production"):
        names = {p.name for p in PROCESSES if p.source == source and p.kind != "migrate"}
        assert names == set(PORTS), source
        migrated = sorted(s for p in MIGRATIONS if p.source == source for s in p.migrated)
        assert migrated == sorted(SERVICES), f"{source}: every database is migrated exactly once"


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_environment_names_are_settings_of_the_process(process: Process) -> None:
    allowed = allowed_env(process.kind, process.migrated)
    names = {name.upper() for name in process.env}
    unknown = names - allowed - (HELPER_VARS if process.source.startswith("k8s") else set())
    assert not unknown, f"not read by {settings_class(process.kind).__qualname__}: {sorted(unknown)}"


def test_the_name_check_tells_the_classes_apart() -> None:
    """Negative control: a misspelt name, or a name of another process's class, is refused."""
    assert "DATABASE_URL" in allowed_env("votes", [])
    assert "DATABSE_URL" not in allowed_env("votes", [])
    assert "DATABASE_URL" not in allowed_env("gateway", [])
    assert "STAKEHOLDERS_URL" not in allowed_env("votes", [])
    assert "BOOTSTRAP_ADMIN_EMAIL" in allowed_env("stakeholders", []) - allowed_env("ideas", [])
    assert "IDEAS_DATABASE_URL" in allowed_env("migrate", ["ideas"]) - allowed_env("migrate", ["votes"])


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_helper_variables_are_expanded_in_order(process: Process) -> None:
    """Kubernetes expands $(VAR) only for variables defined earlier in the list."""
    for name, value in process.env.items():
        assert "$(" not in value, f"{name}={value}: a reference Kubernetes leaves unexpanded"
    if HELPER_VARS & set(process.env):
        assert process.source.startswith("k8s"), "compose interpolates instead"


@pytest.mark.parametrize("process", APPS, ids=APP_IDS)
def test_required_settings_are_set(process: Process) -> None:
    env = process.env
    assert env["ENVIRONMENT"] == "production"
    assert re.fullmatch(r"nats://nats:4222", env["NATS_URL"])
    assert int(env["NATS_STREAM_REPLICAS"]) >= 1
    assert env.get("JWKS_URL") == JWKS_URL or env.get("JWT_PUBLIC_KEY")
    if process.name == "gateway":
        for service in SERVICES:
            assert env[f"{service.upper()}_URL"] == f"http://{service}:{PORTS[service]}"
    else:
        user, _, port, database = db_url_parts(env["DATABASE_URL"])
        assert (user, database, port) == (process.name, process.name, 5432)


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_settings_parse(process: Process, monkeypatch: pytest.MonkeyPatch) -> None:
    """The values as the process would read them (secrets replaced by placeholders)."""
    cls = settings_class(process.kind)
    for name in env_names(cls) | {k.upper() for k in process.env}:
        monkeypatch.delenv(name, raising=False)
    for name, value in process.env.items():
        monkeypatch.setenv(name, value)
    settings = cls()
    if process.kind != "migrate":
        assert settings.environment == "production"
    if process.kind in SERVICES:
        _, _, _, database = db_url_parts(settings.resolved_database_url())  # type: ignore[attr-defined]
        assert database == process.name


@pytest.mark.parametrize("process", APPS, ids=APP_IDS)
def test_command_serves_the_right_app_on_its_port(process: Process) -> None:
    command = process.command
    assert command[0] == "uvicorn" and "--factory" in command
    target = "gateway.main:create_app" if process.name == "gateway" else f"services.{process.name}.main:create_app"
    assert command[1] == target
    module, attr = target.split(":")
    assert callable(getattr(importlib.import_module(module), attr))
    port = PORTS[process.name]
    assert process.option("--port") == str(port)
    assert process.option("--host") == "0.0.0.0"
    assert settings_class(process.kind).model_fields["port"].default == port
    for flag, module_name in (("--loop", "uvloop"), ("--http", "httptools")):
        assert process.option(flag) == module_name
        importlib.import_module(module_name)
    # Longer than the peers' keep-alive (gateway's httpx 30 s, ingress-nginx 60 s).
    assert int(process.option("--timeout-keep-alive") or 5) > 60
    if process.source.startswith("k8s"):
        assert process.ports == [port]


@pytest.mark.parametrize("process", APPS, ids=APP_IDS)
def test_probes_hit_paths_the_app_serves(process: Process) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert serves(process.name, path), path
    assert process.readiness is not None and serves(process.name, process.readiness)
    assert process.probe_port == PORTS[process.name]
    if process.liveness is not None:
        assert process.liveness == "/healthz"


def test_the_ingress_routes_to_paths_the_gateway_serves() -> None:
    (ingress,) = find(rendered(PRODUCTION), "Ingress")
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] == "gateway"
            assert serves("gateway", path["path"], "POST")


def test_the_jwks_url_is_served_by_stakeholders() -> None:
    assert serves("stakeholders", "/.well-known/jwks.json")
    assert not serves("stakeholders", "/no-such-path"), "negative control of the route matching"


@pytest.mark.parametrize("process", MIGRATIONS, ids=[f"{p.source}:{p.name}" for p in MIGRATIONS])
def test_migrations_connect_as_each_service_role(process: Process) -> None:
    assert process.migrated and set(process.migrated) <= set(SERVICES)
    hosts = set()
    for service in process.migrated:
        user, host, _, database = db_url_parts(process.env[f"{service.upper()}_DATABASE_URL"])
        assert (user, database) == (service, service), "each database is migrated by its own role"
        hosts.add(host)
    (host,) = hosts
    if process.source == "compose":
        assert host == "postgres"
    else:  # straight to the primary, never through the transaction pooler
        (cluster,) = find(rendered(PRODUCTION), "Cluster")
        assert host == f"{cluster['metadata']['name']}-rw"


@pytest.mark.parametrize("process", [p for p in APPS if p.name != "gateway"], ids=lambda p: f"{p.source}:{p.name}")
def test_services_reach_the_database_the_way_the_pooler_setting_says(process: Process) -> None:
    _, host, _, _ = db_url_parts(process.env["DATABASE_URL"])
    pooled = process.env["DB_TRANSACTION_POOLER"].lower() == "true"
    if process.source == "compose":
        assert (host, pooled) == ("postgres", False)
    else:
        (pooler,) = find(rendered(PRODUCTION), "Pooler")
        assert (host, pooled) == (pooler["metadata"]["name"], True)
        assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"


GATEWAYS = [p for p in APPS if p.name == "gateway"]
OVERLAY_DIRS = {"k8s:base": BASE, "k8s:production": PRODUCTION}


@pytest.mark.parametrize("process", GATEWAYS, ids=[p.source for p in GATEWAYS])
def test_each_gateway_replica_enforces_its_share_of_the_rate_limits(
    process: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Limits counted in memory are divided among the replicas that run (RATE_LIMIT_REPLICAS), so
    n gateways do not allow n times each limit; a shared store takes the whole limit."""
    from gateway.settings import GatewaySettings

    for name in env_names(GatewaySettings):
        monkeypatch.delenv(name, raising=False)
    for name, value in process.env.items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings()
    if process.source == "compose":
        gateway = compose()["services"]["gateway"]
        running = int(gateway.get("deploy", {}).get("replicas", 1))
        assert "scale" not in gateway
    else:
        (hpa,) = find(rendered(OVERLAY_DIRS[process.source]), "HorizontalPodAutoscaler", "gateway")
        running = hpa["spec"]["minReplicas"]
        assert running > 1, "the check below means something"
    if settings.rate_limit_storage_uri.startswith("memory://"):
        assert settings.rate_limit_replicas == running, f"{process.source}: {running} gateways"
    else:
        assert settings.rate_limit_replicas == 1
