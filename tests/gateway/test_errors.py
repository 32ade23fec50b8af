"""Every error carries a contract code; upstream failures are UNAVAILABLE; bugs are INTERNAL
with nothing of the original leaking out."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from gateway.errors import GatewaySchema
from gateway.ids import encode_global_id
from gateway.settings import GatewaySettings
from tests.gateway.fakes import FakeUpstream, Gateway, codes, make_token, problem

IDEAS = "{ ideas { edges { node { id } } } }"
VOTE = "mutation($id: ID!, $w: Int) { castVote(ideaId: $id, weight: $w) { weight idea { id } } }"


def as_json(result: object) -> str:
    errors = getattr(result, "errors", None) or []
    return json.dumps([e.formatted for e in errors])


@pytest.mark.asyncio
async def test_connection_error_is_unavailable(gateway: Gateway, fake: FakeUpstream) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.overrides["ideas"] = refuse
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAVAILABLE", "retryable": True}
    assert "refused" not in as_json(result)


@pytest.mark.asyncio
async def test_timeout_is_unavailable(gateway: Gateway, fake: FakeUpstream) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.overrides["ideas"] = slow
    assert codes(await gateway.execute(IDEAS)) == ["UNAVAILABLE"]


class Hang(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


@pytest.mark.asyncio
async def test_hanging_service_is_cut_by_the_deadline(schema: GatewaySchema, fake: FakeUpstream) -> None:
    fake.custom_transports["ideas"] = Hang()
    gateway = Gateway(schema, fake, GatewaySettings(upstream_timeout=0.2))
    started = time.perf_counter()
    result = await asyncio.wait_for(gateway.execute(IDEAS), timeout=5)
    assert codes(result) == ["UNAVAILABLE"]
    assert time.perf_counter() - started < 3


@pytest.mark.asyncio
async def test_5xx_is_unavailable_without_details(gateway: Gateway, fake: FakeUpstream) -> None:
    fake.overrides["ideas"] = lambda request: problem(500, "INTERNAL", "psycopg: relation ideas does not exist")
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert "relation" not in as_json(result)


@pytest.mark.asyncio
async def test_problem_codes_pass_through(gateway: Gateway, fake: FakeUpstream) -> None:
    me = make_token(fake.add_stakeholder())
    idea = fake.add_idea(fake.add_stakeholder())
    fake.ideas[idea]["status"] = "SHIPPED"
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", idea), "w": 2}, token=me)
    assert codes(result) == ["CONFLICT"]
    assert result.errors is not None
    assert result.errors[0].message == "this idea does not accept votes"
    # unknown id: the service's 404
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", uuid.uuid4())}, token=me)
    assert codes(result) == ["NOT_FOUND"]
    # not an id at all: an unknown id too
    result = await gateway.execute(VOTE, {"id": "nonsense"}, token=me)
    assert codes(result) == ["NOT_FOUND"]


@pytest.mark.asyncio
async def test_invisible_idea_vote_is_not_found(gateway: Gateway, fake: FakeUpstream) -> None:
    secret = fake.add_idea(fake.add_stakeholder(kind="EMPLOYEE"), visible_to=["EMPLOYEE"])
    me = make_token(fake.add_stakeholder())
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", secret)}, token=me)
    assert codes(result) == ["NOT_FOUND"]


@pytest.mark.asyncio
async def test_upstream_rate_limit_keeps_retry_after(gateway: Gateway, fake: FakeUpstream) -> None:
    fake.overrides["votes"] = lambda request: problem(429, "RATE_LIMITED", "slow down", retry_after=7)
    me = make_token(fake.add_stakeholder())
    result = await gateway.execute(VOTE, {"id": encode_global_id("Idea", uuid.uuid4())}, token=me)
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "RATE_LIMITED", "retryAfter": 7, "retryable": True}


@pytest.mark.asyncio
async def test_an_answer_off_the_contract_is_unavailable_and_says_nothing_of_it(
    gateway: Gateway, fake: FakeUpstream
) -> None:
    """The gateway's clients read the services' public models: an answer that is not one stops
    at that boundary (the service is at fault, not the caller)."""
    idea = fake.add_idea(fake.add_stakeholder())
    fake.ideas[idea]["status"] = "NOT_A_STATUS_SECRET_DETAIL"
    result = await gateway.execute(IDEAS)
    assert codes(result) == ["UNAVAILABLE"]
    assert "SECRET_DETAIL" not in as_json(result)


@pytest.mark.asyncio
async def test_bug_is_masked_as_internal(gateway: Gateway, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_idea(fake.add_stakeholder())

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
async def test_mutations_need_a_token(gateway: Gateway, fake: FakeUpstream) -> None:
    idea = encode_global_id("Idea", fake.add_idea(fake.add_stakeholder()))
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
    assert fake.count() == 0  # refused before any upstream call
    result = await gateway.execute("{ apiKeys { id } }")
    assert codes(result) == ["UNAUTHENTICATED"]


@pytest.mark.asyncio
async def test_bad_tokens_are_unauthenticated(gateway: Gateway, fake: FakeUpstream) -> None:
    who = fake.add_stakeholder()
    expired = make_token(who, ttl=-10)
    for token in (expired, "a.b.c", expired[:-4] + "AAAA"):
        result = await gateway.execute("{ me { id } }", token=token)
        assert codes(result) == ["UNAUTHENTICATED"]
    result = await gateway.execute("{ me { displayName } }", token=make_token(who))
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
async def test_weight_outside_range_is_bad_user_input(gateway: Gateway, fake: FakeUpstream) -> None:
    me = make_token(fake.add_stakeholder())
    idea = encode_global_id("Idea", fake.add_idea(fake.add_stakeholder()))
    for weight in (0, 4, -1):
        result = await gateway.execute(VOTE, {"id": idea, "w": weight}, token=me)
        assert codes(result) == ["BAD_USER_INPUT"]
    assert fake.count("votes") == 0
    result = await gateway.execute(VOTE, {"id": idea}, token=me)  # default weight 1
    assert result.errors is None
    assert result.data == {"castVote": {"weight": 1, "idea": {"id": idea}}}


@pytest.mark.asyncio
async def test_read_only_api_key_cannot_mutate(gateway: Gateway, fake: FakeUpstream) -> None:
    who = fake.add_stakeholder()
    fake.api_keys["ccp_readonly"] = make_token(who, scope="read")
    result = await gateway.execute(
        'mutation { proposeIdea(input: {title: "t", body: "b"}) { id } }', token="ccp_readonly"
    )
    assert codes(result) == ["FORBIDDEN"]
    result = await gateway.execute("{ me { displayName } }", token="ccp_readonly")
    assert result.data == {"me": {"displayName": "Ada"}}


@pytest.mark.asyncio
async def test_mutation_rate_limit(schema: GatewaySchema, fake: FakeUpstream) -> None:
    gateway = Gateway(schema, fake, GatewaySettings(mutation_burst=3, mutation_rate_per_second=0.01))
    me = make_token(fake.add_stakeholder())
    idea = encode_global_id("Idea", fake.add_idea(fake.add_stakeholder()))
    results = [await gateway.execute(VOTE, {"id": idea}, token=me) for _ in range(4)]
    assert [codes(r) for r in results] == [[], [], [], ["RATE_LIMITED"]]
    assert results[-1].errors is not None
    extensions = results[-1].errors[0].extensions or {}
    assert extensions["retryAfter"] >= 1
    # someone else is not limited
    other = make_token(fake.add_stakeholder())
    assert codes(await gateway.execute(VOTE, {"id": idea}, token=other)) == []
