"""Regressions found by the acceptance suite (tests/e2e) against the running platform, pinned
here against the services in-process so they stay fixed without starting the stack."""

from __future__ import annotations

import uuid

import pytest

from gateway.ids import encode_global_id
from tests.gateway.support import Gateway, World, codes


@pytest.mark.asyncio
async def test_merge_ideas_when_the_source_was_never_loaded(gateway: Gateway, world: World) -> None:
    """mergeIdeas cleared the source from the idea DataLoader, and strawberry's clear() raises
    KeyError for a key it never cached: every merge answered INTERNAL."""
    author = await world.stakeholder()
    source, target = await world.idea(author, title="Source"), await world.idea(author, title="Target")
    team = await world.stakeholder(kind="EMPLOYEE", role="PRODUCT_TEAM")
    query = "mutation($s: ID!, $t: ID!) { mergeIdeas(sourceId: $s, targetId: $t) { id title } }"
    variables = {"s": encode_global_id("Idea", source), "t": encode_global_id("Idea", target)}
    result = await gateway.execute(query, variables, token=team.token)
    assert result.errors is None, codes(result)
    assert result.data == {"mergeIdeas": {"id": variables["t"], "title": "Target"}}


@pytest.mark.asyncio
async def test_merge_ideas_after_reading_the_source_in_the_same_request(gateway: Gateway, world: World) -> None:
    author = await world.stakeholder()
    source, target = await world.idea(author), await world.idea(author)
    admin = await world.stakeholder(kind="EMPLOYEE", role="ADMIN")
    await world.known(source)  # the votes service takes votes on it
    query = """mutation($s: ID!, $t: ID!) {
      before: castVote(ideaId: $s, weight: 1) { idea { id status } }
      mergeIdeas(sourceId: $s, targetId: $t) { id }
    }"""
    variables = {"s": encode_global_id("Idea", source), "t": encode_global_id("Idea", target)}
    result = await gateway.execute(query, variables, token=admin.token)
    assert result.errors is None, codes(result)
    assert result.data == {
        "before": {"idea": {"id": variables["s"], "status": "OPEN"}},
        "mergeIdeas": {"id": variables["t"]},
    }


@pytest.mark.asyncio
async def test_an_api_key_cannot_manage_api_keys(gateway: Gateway, world: World) -> None:
    """A read-write API key's token looked like a login token to the stakeholders service, so a
    leaked key could mint more keys (and revoke the owner's others)."""
    owner = await world.stakeholder()
    key = await world.api_key(owner, scope="read-write")
    create = 'mutation { createApiKey(label: "more", scope: READ_WRITE) { id } }'
    revoke = f'mutation {{ revokeApiKey(id: "{encode_global_id("ApiKey", uuid.uuid4())}") }}'
    for query in (create, revoke):
        result = await gateway.execute(query, token=key)
        assert codes(result) == ["FORBIDDEN"]
    assert gateway.count("stakeholders") == 1  # the key exchange only: nothing was asked of /api-keys
    # the same operations with the owner's login token go through to the service
    result = await gateway.execute(create, token=owner.token)
    assert codes(result) != ["FORBIDDEN"]
    assert ("stakeholders", "POST", "/api-keys") in gateway.calls
