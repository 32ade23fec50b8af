"""pytest fixtures: the real servers the tests need, started by the tests themselves.

- `infra`: one embedded PostgreSQL and one nats-server for the session (free ports, a temporary
  folder). With EMBEDDED=false, PG_URL and NATS_URL name existing servers instead.
- `service_app(name)`: a service's ASGI app on its own migrated test database, lifespan run,
  reached through `httpx.AsyncClient(ASGITransport)`.
- `tokens`: mints access tokens with a test key that the service apps trust.
- `started_consumers(app)`: a service app's consumer runner, once its NATS connection is up.
- `running_services(infra, key)`: the four service apps at once, the stakeholders service
  signing with the test key (so its tokens and `tokens`' verify everywhere); for the gateway's
  tests, which reach them through `ServiceApps.transports`."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from devstack.servers import EmbeddedNats, EmbeddedPostgres, create_databases_sync, free_port
from devstack.waiting import eventually
from shared.auth import Principal, Scope, TokenIssuer
from shared.events.catalogue import Role, StakeholderKind
from shared.migrations import upgrade
from shared.settings import ServiceSettings

if TYPE_CHECKING:
    from shared.consumer import ConsumerRunner


def principal(
    kind: str = "CUSTOMER", role: str = "MEMBER", id: uuid.UUID | None = None, scope: str = "read-write"
) -> Principal:
    """A caller for pure unit tests of the domains and the visibility rule."""
    return Principal(id or uuid.uuid4(), StakeholderKind(kind), Role(role), Scope(scope))


@dataclass
class Infra:
    pg_url: str
    nats_url: str
    postgres: EmbeddedPostgres | None
    nats: EmbeddedNats | None
    db_prefix: str

    def database_url(self, name: str) -> str:
        return f"{self.pg_url}/{self.db_prefix}{name}"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    if os.environ.get("EMBEDDED", "true").lower() in ("0", "false", "no"):
        yield Infra(os.environ["PG_URL"], os.environ["NATS_URL"], None, None, f"t{uuid.uuid4().hex[:6]}_")
        return
    base = Path(tempfile.mkdtemp(prefix="ccp-test-"))
    base.chmod(0o755)
    postgres = EmbeddedPostgres(base / "postgres", free_port())
    nats = EmbeddedNats(base / "nats", free_port())
    postgres.start()
    nats.start()
    try:
        yield Infra(postgres.url, nats.url, postgres, nats, "")
    finally:
        nats.stop()
        postgres.stop(mode="immediate")
        # ~200 MB of server data a session: left behind, CI's machine fills up run after run.
        shutil.rmtree(base, ignore_errors=True)


_migrated: set[str] = set()


async def migrated_database(infra: Infra, service: str, database: str) -> str:
    """`database` created and migrated to `service`'s head, once per test session."""
    url = infra.database_url(database)
    if database not in _migrated:
        # Both use asyncio.run (Alembic's env, asyncpg): run them off the test's event loop.
        await asyncio.to_thread(create_databases_sync, infra.pg_url, [f"{infra.db_prefix}{database}"])
        await asyncio.to_thread(upgrade, service, url)
        _migrated.add(database)
    return url


@pytest.fixture(scope="session")
def test_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_id(key: Ed25519PrivateKey) -> str:
    """The key id the stakeholders service gives its signing key (sha256 of the raw public key,
    16 hex digits): it checks tokens by key id, so test tokens carry the one it derives."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@pytest.fixture(scope="session")
def tokens(test_signing_key: Ed25519PrivateKey) -> TokenIssuer:
    defaults = ServiceSettings()
    return TokenIssuer(
        test_signing_key,
        key_id(test_signing_key),
        issuer=defaults.jwt_issuer,
        audience=defaults.jwt_audience,
        ttl_seconds=600,
    )


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def test_public_key_pem(test_signing_key: Ed25519PrivateKey) -> str:
    return public_key_pem(test_signing_key)


ServiceAppFactory = Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
async def service_app(infra: Infra, test_public_key_pem: str) -> AsyncIterator[ServiceAppFactory]:
    """`await service_app("ideas")` -> (app, client). Overrides go to the service's settings;
    `database` picks another database name (e.g. to run two services' tests apart)."""
    async with AsyncExitStack() as stack:

        async def start(name: str, database: str | None = None, **overrides: Any) -> tuple[FastAPI, httpx.AsyncClient]:
            return await start_service_app(stack, infra, test_public_key_pem, name, database, **overrides)

        yield start


async def started_consumers(app: FastAPI) -> ConsumerRunner:
    """The app's consumer runner: it exists once the app has connected to NATS, which its
    lifespan does in the background."""
    runner: ConsumerRunner = await eventually(
        lambda: app.state.runtime.consumers, timeout=30, what="the consumer runner started"
    )
    return runner


async def stop_messaging(app: FastAPI) -> ConsumerRunner:
    """Stop a service app's outbox relay and consumer loops once they have started, so that the
    test decides which event reaches which consumer, when and how often; the consumer runner's
    `apply` stays usable (it runs one delivery's transaction)."""
    runner = await started_consumers(app)
    runtime = app.state.runtime
    runtime.stop.set()
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    return runner


async def start_service_app(
    stack: AsyncExitStack, infra: Infra, public_key_pem: str, name: str, database: str | None = None, **overrides: Any
) -> tuple[FastAPI, httpx.AsyncClient]:
    """One service app on its migrated database, its lifespan (and client) closed by `stack`."""
    module = importlib.import_module(f"services.{name}.main")
    settings_cls = module.Settings
    values: dict[str, Any] = {
        "database_url": await migrated_database(infra, name, database or name),
        "nats_url": infra.nats_url,
        "jwt_public_key": public_key_pem,
        "relay_poll_interval": 0.2,
        "log_json": False,
    }
    values.update(overrides)
    app: FastAPI = module.create_app(settings_cls(**values))
    await stack.enter_async_context(app.router.lifespan_context(app))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
    await stack.enter_async_context(client)
    return app, client


SERVICES = ("stakeholders", "ideas", "votes", "comments")


@dataclass
class ServiceApps:
    """The four service apps running in this process: `transports` (by service name) for
    `gateway.main.create_app(transports=...)`, `clients` to call a service directly."""

    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    transports: dict[str, httpx.AsyncBaseTransport]


@asynccontextmanager
async def running_services(
    infra: Infra, signing_key: Ed25519PrivateKey, database_prefix: str = "gateway_", **overrides: Any
) -> AsyncIterator[ServiceApps]:
    """Every service once, each on its own database `<database_prefix><name>`, on the session's
    PostgreSQL and nats-server. The stakeholders service signs with `signing_key`; every service
    trusts its public key."""
    private_pem = signing_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    async with AsyncExitStack() as stack:
        started: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {}
        for name in SERVICES:
            extra = {"jwt_private_key": private_pem} if name == "stakeholders" else {}
            started[name] = await start_service_app(
                stack, infra, public_key_pem(signing_key), name, f"{database_prefix}{name}", **extra, **overrides
            )
        yield ServiceApps(
            apps={n: app for n, (app, _) in started.items()},
            clients={n: client for n, (_, client) in started.items()},
            transports={n: httpx.ASGITransport(app=app) for n, (app, _) in started.items()},
        )
