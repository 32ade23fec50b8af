"""Regressions found by the acceptance suite (tests/e2e) against the running platform, pinned
here on the fakes so they stay fixed without starting the stack."""

from __future__ import annotations

import re
import uuid

import httpx
import orjson
import pytest

from gateway.ids import encode_global_id
from tests.gateway.fakes import FakeUpstream, Gateway, codes, make_token, ok


def _with_merge(fake: FakeUpstream) -> None:
    """The fake ideas service, plus POST /ideas/{id}/merge answering the target."""

    def ideas(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and (m := re.fullmatch(r"/ideas/([0-9a-f-]+)/merge", request.url.path)):
            source = fake.ideas[uuid.UUID(m.group(1))]
            target_id = uuid.UUID(orjson.loads(request.content)["target_id"])
            source.update(status="MERGED", merged_into_id=str(target_id))
            return ok(fake.ideas[target_id])
        caller = fake._caller(request)
        body = orjson.loads(request.content) if request.content else {}
        return fake._ideas(request.method, request.url.path, request, body, caller)

    fake.overrides["ideas"] = ideas


@pytest.mark.asyncio
async def test_merge_ideas_when_the_source_was_never_loaded(gateway: Gateway, fake: FakeUpstream) -> None:
    """mergeIdeas cleared the source from the idea DataLoader, and strawberry's clear() raises
    KeyError for a key it never cached: every merge answered INTERNAL."""
    _with_merge(fake)
    author = fake.add_stakeholder()
    source, target = fake.add_idea(author, title="Source"), fake.add_idea(author, title="Target")
    token = make_token(fake.add_stakeholder(kind="EMPLOYEE", role="PRODUCT_TEAM"), "EMPLOYEE", "PRODUCT_TEAM")
    query = "mutation($s: ID!, $t: ID!) { mergeIdeas(sourceId: $s, targetId: $t) { id title } }"
    variables = {"s": encode_global_id("Idea", source), "t": encode_global_id("Idea", target)}
    result = await gateway.execute(query, variables, token=token)
    assert result.errors is None, codes(result)
    assert result.data == {"mergeIdeas": {"id": variables["t"], "title": "Target"}}


@pytest.mark.asyncio
async def test_merge_ideas_after_reading_the_source_in_the_same_request(gateway: Gateway, fake: FakeUpstream) -> None:
    _with_merge(fake)
    author = fake.add_stakeholder()
    source, target = fake.add_idea(author), fake.add_idea(author)
    token = make_token(fake.add_stakeholder(kind="EMPLOYEE", role="ADMIN"), "EMPLOYEE", "ADMIN")
    query = """mutation($s: ID!, $t: ID!) {
      before: castVote(ideaId: $s, weight: 1) { idea { id status } }
      mergeIdeas(sourceId: $s, targetId: $t) { id }
    }"""
    variables = {"s": encode_global_id("Idea", source), "t": encode_global_id("Idea", target)}
    result = await gateway.execute(query, variables, token=token)
    assert result.errors is None, codes(result)
    assert result.data == {
        "before": {"idea": {"id": variables["s"], "status": "OPEN"}},
        "mergeIdeas": {"id": variables["t"]},
    }


@pytest.mark.asyncio
async def test_an_api_key_cannot_manage_api_keys(gateway: Gateway, fake: FakeUpstream) -> None:
    """A read-write API key's token looked like a login token to the stakeholders service, so a
    leaked key could mint more keys (and revoke the owner's others)."""
    owner = fake.add_stakeholder()
    fake.api_keys["ccp_read_write"] = make_token(owner, scope="read-write", api_key_id=uuid.uuid4())
    create = 'mutation { createApiKey(label: "more", scope: READ_WRITE) { id } }'
    revoke = f'mutation {{ revokeApiKey(id: "{encode_global_id("ApiKey", uuid.uuid4())}") }}'
    for query in (create, revoke):
        result = await gateway.execute(query, token="ccp_read_write")
        assert codes(result) == ["FORBIDDEN"]
    assert fake.count("stakeholders") == 1  # the key exchange only: nothing was asked of /api-keys
    # the same operations with the owner's login token go through to the service
    result = await gateway.execute(create, token=make_token(owner))
    assert codes(result) != ["FORBIDDEN"]
    assert ("stakeholders", "POST", "/api-keys") in fake.calls
