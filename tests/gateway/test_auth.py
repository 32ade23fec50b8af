"""API keys (bearer tokens that are not JWTs) are exchanged once for a short-lived JWT, cached."""

from __future__ import annotations

import asyncio

import pytest

from shared.auth import parse_bearer as parse_authorization
from shared.problems import Problem
from tests.gateway.support import Gateway, World, codes

ME = "{ me { displayName } }"
EXCHANGE = "stakeholders POST /auth/api-key-token"


@pytest.mark.asyncio
async def test_api_key_exchange_is_cached(gateway: Gateway, world: World) -> None:
    key = await world.api_key(await world.stakeholder(), scope="read-write")
    results = await asyncio.gather(*(gateway.execute(ME, token=key) for _ in range(5)))
    assert all(r.data == {"me": {"displayName": "Ada"}} for r in results)
    assert gateway.endpoints()[EXCHANGE] == 1
    # the exchanged JWT is what the services see
    result = await gateway.execute(
        'mutation { proposeIdea(input: {title: "t", body: "b"}) { title author { id } } }', token=key
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    assert result.data["proposeIdea"]["title"] == "t"
    assert gateway.endpoints()[EXCHANGE] == 1


@pytest.mark.asyncio
async def test_unknown_api_key_is_unauthenticated(gateway: Gateway) -> None:
    for token in ("ccp_unknown", "something-else"):
        assert codes(await gateway.execute(ME, token=token)) == ["UNAUTHENTICATED"]


@pytest.mark.asyncio
async def test_revoking_forgets_cached_exchanges(gateway: Gateway, world: World) -> None:
    owner = await world.stakeholder()
    key = await world.api_key(owner)
    assert (await gateway.execute(ME, token=key)).errors is None
    listed = await gateway.execute("{ apiKeys { id } }", token=owner.token)
    assert listed.data is not None
    [key_id] = [k["id"] for k in listed.data["apiKeys"]]
    # revoked through this gateway: its cached exchange (a JWT still valid) is dropped
    revoked = await gateway.execute("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": key_id}, owner.token)
    assert revoked.data == {"revokeApiKey": True}
    assert codes(await gateway.execute(ME, token=key)) == ["UNAUTHENTICATED"]


def test_authorization_header_forms() -> None:
    assert parse_authorization(None) is None
    assert parse_authorization("Bearer abc") == "abc"
    assert parse_authorization("bearer  abc ") == "abc"
    for bad in ("Basic abc", "Bearer", "abc", 5):
        with pytest.raises(Problem) as err:
            parse_authorization(bad)
        assert err.value.code == "UNAUTHENTICATED"
