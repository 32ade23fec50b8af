"""The platform's processes on one machine, as a library: settings, the embedded servers
(`Infra`), and how each service and the gateway is started. Used by `python -m devstack`
(make run, under honcho) and by `devstack.cluster` (tests that kill and restart processes)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field

from devstack.servers import EmbeddedNats, EmbeddedPostgres, create_databases_sync
from shared.migrations import SERVICES, upgrade
from shared.settings import EMBEDDED_NATS_PORT, EMBEDDED_PG_PORT, CommonSettings

ROOT = Path(__file__).resolve().parent.parent


class DevstackSettings(CommonSettings):
    data_dir: Path = ROOT / ".data"
    embedded: bool = True
    embedded_pg_port: int = EMBEDDED_PG_PORT
    embedded_nats_port: int = EMBEDDED_NATS_PORT
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    stakeholders_port: int = 8001
    ideas_port: int = 8002
    votes_port: int = 8003
    comments_port: int = 8004
    # Database names are "<db_prefix><service>", so a shared server can host several stacks.
    db_prefix: str = ""
    workers: int = Field(1, description="uvicorn workers per process")
    # Instances of every service (instance i listens on its port + 10*i); the gateway spreads
    # calls over them and they share their durable consumers and outbox.
    replicas: int = Field(1, ge=1, le=5)

    def service_port(self, service: str, instance: int = 0) -> int:
        return int(getattr(self, f"{service}_port")) + 10 * instance

    def service_url(self, service: str, instance: int = 0) -> str:
        return f"http://{self.host}:{self.service_port(service, instance)}"

    def service_urls(self, service: str) -> str:
        """Every instance's URL, comma-separated (what the gateway reads)."""
        return ",".join(self.service_url(service, i) for i in range(self.replicas))

    def database_url(self, service: str) -> str:
        return f"{self.pg_url.rstrip('/')}/{self.db_prefix}{service}"


class Infra:
    """The servers this run started itself (none when EMBEDDED=false)."""

    def __init__(self, settings: DevstackSettings) -> None:
        self.settings = settings
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None

    def start(self) -> None:
        s = self.settings
        if s.embedded:
            s.data_dir.mkdir(parents=True, exist_ok=True)
            self.postgres = EmbeddedPostgres(s.data_dir / "postgres", s.embedded_pg_port)
            self.postgres.start()
            self.nats = EmbeddedNats(s.data_dir / "nats", s.embedded_nats_port)
            self.nats.start()
            s.pg_url = self.postgres.url
            s.nats_url = self.nats.url
        say(f"PostgreSQL {s.pg_url}   NATS {s.nats_url}")

    def migrate(self) -> None:
        s = self.settings
        create_databases_sync(s.pg_url, [f"{s.db_prefix}{name}" for name in SERVICES])
        for name in SERVICES:
            upgrade(name, s.database_url(name))
        say("databases migrated: " + ", ".join(f"{s.db_prefix}{n}" for n in SERVICES))

    def stop(self) -> None:
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()


def say(text: str) -> None:
    print(f"[devstack] {text}", flush=True)


def process_env(settings: DevstackSettings, service: str | None, instance: int = 0) -> dict[str, str]:
    env = {
        "PG_URL": settings.pg_url,
        "NATS_URL": settings.nats_url,
        "ENVIRONMENT": settings.environment,
        "LOG_LEVEL": settings.log_level,
        "JWKS_URL": ",".join(
            f"{settings.service_url('stakeholders', i)}/.well-known/jwks.json" for i in range(settings.replicas)
        ),
        "PYTHONUNBUFFERED": "1",
    }
    if service is None:
        env.update({f"{name.upper()}_URL": settings.service_urls(name) for name in SERVICES})
        env["PORT"] = str(settings.gateway_port)
    else:
        env["DATABASE_URL"] = settings.database_url(service)
        env["PORT"] = str(settings.service_port(service, instance))
    return env


def uvicorn_command(app_factory: str, host: str, port: int, workers: int) -> str:
    return (
        f"{sys.executable} -m uvicorn {app_factory} --factory --host {host} --port {port} "
        f"--loop uvloop --http httptools --no-access-log --timeout-graceful-shutdown 5 --timeout-keep-alive 75 "
        f"--workers {workers}"
    )


def process_urls(settings: DevstackSettings) -> dict[str, str]:
    """Every HTTP process this run starts, by name."""
    urls = {
        name if settings.replicas == 1 else f"{name}.{i + 1}": settings.service_url(name, i)
        for name in SERVICES
        for i in range(settings.replicas)
    }
    urls["gateway"] = f"http://{settings.host}:{settings.gateway_port}"
    return urls
