"""API keys (bearer tokens that are not JWTs) are exchanged once for a short-lived JWT, cached."""

from __future__ import annotations

import asyncio

import pytest

from shared.auth import parse_bearer as parse_authorization
from shared.problems import Problem
from tests.gateway.fakes import FakeUpstream, Gateway, codes, make_token

ME = "{ me { displayName } }"


@pytest.mark.asyncio
async def test_api_key_exchange_is_cached(gateway: Gateway, fake: FakeUpstream) -> None:
    who = fake.add_stakeholder()
    fake.api_keys["ccp_secret"] = make_token(who, scope="read-write")
    results = await asyncio.gather(*(gateway.execute(ME, token="ccp_secret") for _ in range(5)))
    assert all(r.data == {"me": {"displayName": "Ada"}} for r in results)
    assert fake.endpoints()["stakeholders POST /auth/api-key-token"] == 1
    # the exchanged JWT is what the services see
    result = await gateway.execute(
        'mutation { proposeIdea(input: {title: "t", body: "b"}) { title author { id } } }', token="ccp_secret"
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    assert result.data["proposeIdea"]["title"] == "t"
    assert fake.endpoints()["stakeholders POST /auth/api-key-token"] == 1


@pytest.mark.asyncio
async def test_unknown_api_key_is_unauthenticated(gateway: Gateway, fake: FakeUpstream) -> None:
    for token in ("ccp_unknown", "something-else"):
        assert codes(await gateway.execute(ME, token=token)) == ["UNAUTHENTICATED"]


@pytest.mark.asyncio
async def test_revoking_forgets_cached_exchanges(gateway: Gateway, fake: FakeUpstream) -> None:
    who = fake.add_stakeholder()
    fake.api_keys["ccp_secret"] = make_token(who)
    assert (await gateway.execute(ME, token="ccp_secret")).errors is None
    gateway.runtime.authenticator.forget_api_keys()
    del fake.api_keys["ccp_secret"]
    assert codes(await gateway.execute(ME, token="ccp_secret")) == ["UNAUTHENTICATED"]


def test_authorization_header_forms() -> None:
    assert parse_authorization(None) is None
    assert parse_authorization("Bearer abc") == "abc"
    assert parse_authorization("bearer  abc ") == "abc"
    for bad in ("Basic abc", "Bearer", "abc", 5):
        with pytest.raises(Problem) as err:
            parse_authorization(bad)
        assert err.value.code == "UNAUTHENTICATED"
