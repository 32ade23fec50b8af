from __future__ import annotations

import pytest

from gateway.errors import GatewaySchema
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from tests.gateway.fakes import FakeUpstream, Gateway


@pytest.fixture(scope="session")
def schema() -> GatewaySchema:
    return build_schema(GatewaySettings())


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def gateway(schema: GatewaySchema, fake: FakeUpstream) -> Gateway:
    return Gateway(schema, fake)
