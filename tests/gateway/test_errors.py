"""Every error carries a contract code; upstream failures are UNAVAILABLE; bugs are INTERNAL
with nothing of the original leaking out. Failures are injected in front of the real services
(`Gateway.fail`); everything else is what the services answer."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from gateway.ids import encode_global_id
from tests.gateway.support import (
    Gateway,
    GatewayFactory,
    Result,
    World,
    answering,
    codes,
    hanging,
    problem,
    raising,
    rewriting,
)

IDEAS = "{ ideas { edges { node { id } } } }"
VOTE = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight idea { id } } }"


def as_json(result: Result) -> str:
    errors = getattr(result, "errors", None) or []
    return json.dumps([e.formatted for e in errors])


@pytest.mark.asyncio
async def test_connection_error_is_unavailable(gateway: Gateway) -> None:
    gateway.fail("ideas", raising(httpx.ConnectError, "connection refused"))
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAVAILABLE", "retryable": True}
    assert "refused" not in as_json(result)


@pytest.mark.asyncio
async def test_timeout_is_unavailable(gateway: Gateway) -> None:
    gateway.fail("ideas", raising(httpx.ReadTimeout, "timed out"))
    assert codes(await gateway.execute(IDEAS)) == ["UNAVAILABLE"]


@pytest.mark.asyncio
async def test_hanging_service_is_cut_by_the_deadline(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(upstream_timeout=0.2)
    gateway.fail("ideas", hanging)
    # The service never answers: only the gateway's own deadline can end the call (the bound here
    # just keeps a broken deadline from hanging the suite).
    result = await asyncio.wait_for(gateway.execute(IDEAS), timeout=60)
    assert codes(result) == ["UNAVAILABLE"]


@pytest.mark.asyncio
async def test_5xx_is_unavailable_without_details(gateway: Gateway) -> None:
    gateway.fail("ideas", answering(lambda: problem(500, "INTERNAL", "psycopg: relation ideas does not exist")))
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert "relation" not in as_json(result)


@pytest.mark.asyncio
async def test_problem_codes_pass_through(gateway: Gateway, world: World) -> None:
    me, author = await world.stakeholders("Ada", "Author")
    idea = await world.idea(author)
    await world.move(idea, "UNDER_REVIEW", "PLANNED", "IN_PROGRESS", "SHIPPED")
    await world.until_votes_refuse(idea, "SHIPPED")
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", idea), "w": 2}, token=me.token)
    assert codes(result) == ["CONFLICT"]
    assert result.errors is not None
    assert result.errors[0].message == "the idea is SHIPPED and does not accept votes"
    # unknown id: the service's 404
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", uuid.uuid4())}, token=me.token)
    assert codes(result) == ["NOT_FOUND"]
    # not an id at all: an unknown id too
    result = await gateway.execute(VOTE, {"id": "nonsense"}, token=me.token)
    assert codes(result) == ["NOT_FOUND"]


@pytest.mark.asyncio
async def test_invisible_idea_vote_is_not_found(gateway: Gateway, world: World) -> None:
    author, me = await asyncio.gather(world.stakeholder(kind="EMPLOYEE"), world.stakeholder())
    secret = await world.idea(author, visible_to=["EMPLOYEE"])
    await world.known(secret)  # known to the votes service: its 404 is about visibility
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", secret)}, token=me.token)
    assert codes(result) == ["NOT_FOUND"]


@pytest.mark.asyncio
async def test_upstream_rate_limit_keeps_retry_after(gateway: Gateway, world: World) -> None:
    gateway.fail("votes", answering(lambda: problem(429, "RATE_LIMITED", "slow down", retry_after=7)))
    me = await world.stakeholder()
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", uuid.uuid4())}, token=me.token)
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "RATE_LIMITED", "retryAfter": 7, "retryable": True}


@pytest.mark.asyncio
async def test_an_answer_off_the_contract_is_unavailable_and_says_nothing_of_it(gateway: Gateway, world: World) -> None:
    """The gateway's clients read the services' public models: an answer that is not one stops
    at that boundary (the service is at fault, not the caller)."""
    await world.idea(await world.stakeholder())

    def corrupt(page: dict[str, list[dict[str, object]]]) -> None:
        for idea in page["items"]:
            idea["status"] = "NOT_A_STATUS_SECRET_DETAIL"

    gateway.fail("ideas", rewriting(corrupt), path="/ideas", method="GET")
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert "SECRET_DETAIL" not in as_json(result)


@pytest.mark.asyncio
async def test_bug_is_masked_as_internal(gateway: Gateway, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await world.idea(await world.stakeholder())  # a page with an idea in it: from_model is called

    def bug(_: object) -> object:
        raise ValueError("NOT_A_STATUS_SECRET_DETAIL")

    monkeypatch.setattr("gateway.schema.idea.Idea.from_model", bug)
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["INTERNAL"]
    assert result.errors is not None
    assert result.errors[0].message == "internal error"
    text = as_json(result)
    assert "SECRET_DETAIL" not in text
    assert "Traceback" not in text
    assert "ValueError" not in text


@pytest.mark.asyncio
async def test_mutations_need_a_token(gateway: Gateway, world: World) -> None:
    idea = encode_global_id("Idea", await world.idea(await world.stakeholder()))
    mutations = [
        ('mutation { proposeIdea(input: {title: "t", body: "b"}) { id } }', {}),
        ("mutation($id: ID!) { castVote(ideaId: $id) { weight } }", {"id": idea}),
        ("mutation($id: ID!) { withdrawVote(ideaId: $id) }", {"id": idea}),
        ('mutation($id: ID!) { addComment(ideaId: $id, body: "x") { id } }', {"id": idea}),
        ('mutation($id: ID!) { refineIdea(id: $id, input: {title: "x"}) { id } }', {"id": idea}),
        ("mutation($id: ID!) { setIdeaStatus(id: $id, status: PLANNED) { id } }", {"id": idea}),
        ("mutation($id: ID!) { mergeIdeas(sourceId: $id, targetId: $id) { id } }", {"id": idea}),
        ('mutation($id: ID!) { flagComment(id: $id, reason: "x") }', {"id": idea}),
        ('mutation($id: ID!) { hideComment(id: $id, reason: "x") { id } }', {"id": idea}),
        ("mutation($id: ID!) { grantRole(stakeholderId: $id, role: ADMIN) { id } }", {"id": idea}),
        ('mutation { createApiKey(label: "ci", scope: READ) { secret } }', {}),
        ("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": idea}),
    ]
    for query, variables in mutations:
        result = await gateway.execute(query, variables)
        assert codes(result) == ["UNAUTHENTICATED"], query
    assert gateway.count() == 0  # refused before any upstream call
    result = await gateway.execute("{ apiKeys { id } }")
    assert codes(result) == ["UNAUTHENTICATED"]


@pytest.mark.asyncio
async def test_bad_tokens_are_unauthenticated(gateway: Gateway, world: World) -> None:
    who = await world.stakeholder()
    expired = world.token(who, ttl=-10)
    for token in (expired, "a.b.c", expired[:-4] + "AAAA"):
        result = await gateway.execute("{ me { id } }", token=token)
        assert codes(result) == ["UNAUTHENTICATED"]
    result = await gateway.execute("{ me { displayName } }", token=world.token(who))
    assert result.data == {"me": {"displayName": "Ada"}}
    assert (await gateway.execute("{ me { id } }")).data == {"me": None}


@pytest.mark.asyncio
async def test_wrong_login_is_unauthenticated(gateway: Gateway) -> None:
    result = await gateway.execute('mutation { login(email: "a@b.c", password: "wrongwrong") { token } }')
    assert codes(result) == ["UNAUTHENTICATED"]


@pytest.mark.asyncio
async def test_request_errors_are_bad_user_input(gateway: Gateway) -> None:
    for query in ("{ ideas { edges ", "{ ideaz { totalCount } }", '{ ideas(first: "x") { totalCount } }'):
        result = await gateway.execute(query)
        assert codes(result) == ["BAD_USER_INPUT"], query
    result = await gateway.execute("{ ideaz { totalCount } }")
    assert "Did you mean" not in as_json(result)
    result = await gateway.execute("query($n: Int!) { ideas(first: $n) { totalCount } }", {"n": "many"})
    assert codes(result) == ["BAD_USER_INPUT"]


@pytest.mark.asyncio
async def test_weight_outside_range_is_bad_user_input(gateway: Gateway, world: World) -> None:
    me, author = await world.stakeholders("Ada", "Author")
    idea_id = await world.idea(author)
    await world.known(idea_id)
    idea = encode_global_id("Idea", idea_id)
    for weight in (0, 4, -1):
        result = await gateway.execute(VOTE, {"id": idea, "w": weight}, token=me.token)
        assert codes(result) == ["BAD_USER_INPUT"]
    assert gateway.count("votes") == 0
    result = await gateway.execute(VOTE, {"id": idea}, token=me.token)  # default weight 1
    assert result.errors is None
    assert result.data == {"castVote": {"weight": 1, "idea": {"id": idea}}}


@pytest.mark.asyncio
async def test_read_only_api_key_cannot_mutate(gateway: Gateway, world: World) -> None:
    key = await world.api_key(await world.stakeholder(), scope="read")
    result = await gateway.execute('mutation { proposeIdea(input: {title: "t", body: "b"}) { id } }', token=key)
    assert codes(result) == ["FORBIDDEN"]
    result = await gateway.execute("{ me { displayName } }", token=key)
    assert result.data == {"me": {"displayName": "Ada"}}


@pytest.mark.asyncio
async def test_mutation_rate_limit(make_gateway: GatewayFactory, world: World) -> None:
    gateway = await make_gateway(mutation_burst=3, mutation_rate_per_second=0.01)
    me, other, author = await world.stakeholders("Ada", "Other", "Author")
    idea_id = await world.idea(author)
    await world.known(idea_id)
    idea = encode_global_id("Idea", idea_id)
    results = [await gateway.execute(VOTE, {"id": idea}, token=me.token) for _ in range(4)]
    assert [codes(r) for r in results] == [[], [], [], ["RATE_LIMITED"]]
    assert results[-1].errors is not None
    extensions = results[-1].errors[0].extensions or {}
    assert extensions["retryAfter"] >= 1
    # someone else is not limited
    assert codes(await gateway.execute(VOTE, {"id": idea}, token=other.token)) == []
