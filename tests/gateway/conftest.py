"""The gateway's tests: the gateway in front of the real services, started once for this folder
(and stopped after it, so that no instance of theirs lingers while other tiers run), on their own
databases (`gateway_<service>`). Each test gets its own gateway, and new data (`world`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.testing import Infra, ServiceApps, running_services
from gateway.errors import GatewaySchema
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from shared.auth import TokenIssuer
from tests.gateway.support import Gateway, GatewayFactory, World


@pytest.fixture(scope="session")
def schema() -> GatewaySchema:
    return build_schema(GatewaySettings())


@pytest.fixture(scope="package")
async def services(infra: Infra, test_signing_key: Ed25519PrivateKey) -> AsyncIterator[ServiceApps]:
    # Registering people is most of what these tests do, and the production argon2 cost (~0.2 s
    # of CPU each, far more on a busy machine) was most of their time: the same algorithm at its
    # lowest cost instead (the other services ignore these settings).
    cheap_passwords = {"password_hash_time_cost": 1, "password_hash_memory_kib": 8, "password_hash_parallelism": 1}
    async with running_services(infra, test_signing_key, log_level="WARNING", **cheap_passwords) as apps:
        yield apps


@pytest.fixture
def world(services: ServiceApps, tokens: TokenIssuer) -> World:
    return World(services, tokens)


@pytest.fixture
async def make_gateway(services: ServiceApps, test_public_key_pem: str) -> AsyncIterator[GatewayFactory]:
    """`await make_gateway(**settings)`: a gateway (lifespan running) in front of the services,
    stopped after the test (see `Gateway`)."""
    async with AsyncExitStack() as stack:

        async def start(**options: Any) -> Gateway:
            gateway = await Gateway(services, test_public_key_pem, **options).start()
            stack.push_async_callback(gateway.stop)
            return gateway

        yield start


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()
