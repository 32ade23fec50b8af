"""Abuse of the public API: every request the gateway refuses before it costs the platform
anything gets a clear message and a contract code (and never a 5xx)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from tests.e2e.conftest import GraphQL
from tests.e2e.support import (
    COMMENT,
    PASSWORD,
    PROPOSE,
    REGISTER,
    SET_STATUS,
    Crowd,
    Session,
    anonymous,
    codes,
    comment,
    propose,
    register,
    unique,
)

pytestmark = pytest.mark.e2e


def refused(body: dict[str, Any]) -> tuple[list[str], str]:
    """(codes, first message) of a refused request, which has no data."""
    assert body.get("data") is None, body
    errors = body["errors"]
    assert errors, body
    return [e["extensions"]["code"] for e in errors], errors[0]["message"]


def test_deep_query_is_refused(url: str) -> None:
    deep = "{ ideas { edges { node { " + "mergedInto { " * 15 + "id" + " }" * 15 + " } } } }"
    codes, message = refused(anonymous(url)(deep))
    assert codes == ["BAD_USER_INPUT"] and "depth" in message
    # through fragments too
    fragments = "fragment B on Idea { " + "mergedInto { " * 12 + "id" + " }" * 12 + " }"
    deep = "{ ideas { ...A } } fragment A on IdeaConnection { edges { node { ...B } } } " + fragments
    assert refused(anonymous(url)(deep))[0] == ["BAD_USER_INPUT"]
    # within the limit it runs
    fine = "{ ideas(first: 1) { edges { node { " + "mergedInto { " * 5 + "id" + " }" * 5 + " } } } }"
    assert "ideas" in anonymous(url).ok(fine)


def test_alias_flood_is_refused(url: str) -> None:
    flood = "{ " + " ".join(f"a{n}: ideas(first: 1) {{ totalCount }}" for n in range(200)) + " }"
    codes, message = refused(anonymous(url)(flood))
    assert codes == ["BAD_USER_INPUT"] and "aliases" in message
    # hidden in fragments and inline fragments, they still count
    fragments = " ".join(
        f"fragment F{f} on Query {{ {' '.join(f'a{f}x{n}: __typename' for n in range(10))} }}" for f in range(4)
    )
    flood = "{ " + " ".join(f"...F{f}" for f in range(4)) + " } " + fragments
    assert refused(anonymous(url)(flood))[0] == ["BAD_USER_INPUT"]
    flood = "{ " + " ".join(f"... on Query {{ b{n}: __typename }}" for n in range(40)) + " }"
    assert refused(anonymous(url)(flood))[0] == ["BAD_USER_INPUT"]


def test_huge_first_is_bad_user_input(url: str, crowd: Crowd) -> None:
    idea = propose(crowd())
    api = anonymous(url)
    for query in (
        "{ ideas(first: 101) { totalCount } }",
        "{ ideas(first: 1000000) { totalCount } }",
        "{ ideas(first: -5) { totalCount } }",
        '{ similarIdeas(text: "x", first: 1000) { id } }',
        '{ experts(tag: "ui", first: 1000) { id } }',
    ):
        codes, message = refused(api(query))
        assert codes == ["BAD_USER_INPUT"] and "first" in message, query
    nested = "query($id: ID!) { idea(id: $id) { comments(first: 500) { totalCount } } }"
    assert api.error_codes(nested, id=idea["id"]) == ["BAD_USER_INPUT"]
    body = api("query($f: Int!) { ideas(first: $f) { totalCount } }", f=101)
    assert refused(body)[0] == ["BAD_USER_INPUT"]
    # 100 is the most, and is served
    assert "totalCount" in api.ok("{ ideas(first: 100) { totalCount } }")["ideas"]


def test_query_over_the_cost_limit_is_refused(url: str) -> None:
    api = anonymous(url)
    costly = "{ ideas(first: 100) { edges { node { comments(first: 100) { totalCount } } } } }"
    codes, message = refused(api(costly))
    assert codes == ["BAD_USER_INPUT"] and "cost" in message
    # the same through variables, fragments, defaults and aliases
    by_variables = (
        "query($a: Int, $b: Int) { ideas(first: $a) { edges { node { comments(first: $b) { totalCount } } } } }"
    )
    assert refused(api(by_variables, a=100, b=60))[0] == ["BAD_USER_INPUT"]
    with_defaults = "query($a: Int = 100) { ideas(first: $a) { edges { node { comments { totalCount } } } } }"
    assert "ideas" in api.ok(with_defaults)  # 100 + 100 x 20 (the default) = 2,100: allowed
    fragment = (
        "{ ideas(first: 100) { ...E } } "
        "fragment E on IdeaConnection { edges { node { comments(first: 60) { totalCount } } } }"
    )
    assert refused(api(fragment))[0] == ["BAD_USER_INPUT"]
    aliased = (
        "{ "
        + " ".join(
            f"a{n}: ideas(first: 100) {{ edges {{ node {{ comments(first: 5) {{ totalCount }} }} }} }}"
            for n in range(10)
        )
        + " }"
    )
    assert refused(api(aliased))[0] == ["BAD_USER_INPUT"]
    # nested through a comment's idea: multiplied all the way down
    nested = (
        "{ ideas(first: 20) { edges { node { comments(first: 20) { edges { node { idea { "
        "comments(first: 20) { totalCount } } } } } } } } }"
    )
    assert refused(api(nested))[0] == ["BAD_USER_INPUT"]


def test_oversized_body_is_refused(url: str) -> None:
    padding = "x" * (300 * 1024)
    response = httpx.post(url, json={"query": "{ __typename }", "variables": {"padding": padding}}, timeout=30)
    assert response.status_code == 413
    codes, message = refused(response.json())
    assert codes == ["BAD_USER_INPUT"] and "too large" in message
    # a huge query text too (one that would also be far over the token limit)
    response = httpx.post(url, json={"query": "{ " + "__typename " * 40_000 + "}"}, timeout=30)
    assert response.status_code == 413
    # under the cap, a long document is refused by the token limit instead
    codes, message = refused(anonymous(url)("{ " + "__typename " * 3_100 + "}"))
    assert codes == ["BAD_USER_INPUT"] and "tokens" in message


def test_batch_flood_is_refused(url: str) -> None:
    flood = [{"query": "{ __typename }"} for _ in range(50)]
    response = httpx.post(url, json=flood, timeout=30)
    assert 400 <= response.status_code < 500
    codes, message = refused(response.json())
    assert codes == ["BAD_USER_INPUT"] and "operations" in message
    # a small batch is served, one answer per operation
    response = httpx.post(url, json=[{"query": "{ __typename }"}, {"query": "{ me { id } }"}], timeout=30)
    assert response.status_code == 200
    assert response.json() == [{"data": {"__typename": "Query"}}, {"data": {"me": None}}]


def test_malformed_requests_get_coded_errors_never_a_5xx(url: str) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("post", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("post", {"content": b"[1, 2]", "headers": {"content-type": "application/json"}}),
        ("post", {"json": {"query": "{ __typename }", "variables": "not an object"}}),
        ("post", {"json": {"variables": {}}}),
        ("post", {"json": {"query": "{ ideas(first: 1) { edges { node { nope } } } }"}}),
        ("post", {"json": {"query": 'subscription { ideaChanged(id: "x") { id } }'}}),
        ("get", {"params": {"query": 'mutation { withdrawVote(ideaId: "x") }'}}),
        ("post", {"json": {"query": "query($f: Int) { ideas(first: $f) { totalCount } }", "variables": {"f": "x"}}}),
        ("post", {"json": {"query": "{ __typename } { __typename }"}}),
    ]
    for method, kwargs in cases:
        response = getattr(httpx, method)(url, timeout=30, **kwargs)
        assert response.status_code < 500, (kwargs, response.text)
        codes, message = refused(response.json())
        assert set(codes) == {"BAD_USER_INPUT"}, (kwargs, response.text)
        assert "Traceback" not in message and "SELECT" not in message
    # no field suggestions (they would map the schema for an attacker)
    codes, message = refused(anonymous(url)("{ idaes { id } }"))
    assert codes == ["BAD_USER_INPUT"] and "Did you mean" not in message


def introspect(settings: GatewaySettings) -> Any:
    schema = build_schema(settings)
    return asyncio.run(schema.execute("{ __schema { queryType { name } } }"))


def test_introspection_is_a_setting_off_in_production(url: str) -> None:
    # the e2e stack runs in development: introspection answers there
    assert anonymous(url).ok("{ __schema { queryType { name } } }") == {"__schema": {"queryType": {"name": "Query"}}}
    production = GatewaySettings(environment="production")
    assert production.introspection_enabled is False and production.graphiql_enabled is False
    result = introspect(production)
    assert result.data is None and result.errors
    assert {e.extensions["code"] for e in result.errors} == {"BAD_USER_INPUT"}  # type: ignore[index]
    assert "introspection" in result.errors[0].message.lower()
    assert introspect(GatewaySettings(environment="production", introspection=True)).errors is None
    development = GatewaySettings(environment="development")
    assert development.introspection_enabled is True
    assert introspect(development).errors is None


def test_nul_characters_are_bad_user_input_never_unavailable(url: str, crowd: Crowd, product_team: Session) -> None:
    """PostgreSQL text cannot hold NUL; the services refuse it as input instead of failing (a
    500 there reached the client as a retryable UNAVAILABLE)."""
    nul = "\x00"
    member = crowd()
    idea = propose(member)
    remark = comment(member, idea["id"])
    register_input = {
        "email": f"{unique('nul')}@example.org",
        "password": PASSWORD,
        "displayName": "x",
        "kind": "CUSTOMER",
    }
    cases: list[tuple[Session | GraphQL, str, dict[str, Any]]] = [
        (anonymous(url), REGISTER, {"input": {**register_input, "email": f"a{nul}b@example.org"}}),
        (anonymous(url), REGISTER, {"input": {**register_input, "displayName": f"x{nul}"}}),
        (anonymous(url), REGISTER, {"input": {**register_input, "organization": f"o{nul}"}}),
        (member, PROPOSE, {"input": {"title": f"t{nul}", "body": "b"}}),
        (member, PROPOSE, {"input": {"title": "t", "body": f"b{nul}"}}),
        (member, PROPOSE, {"input": {"title": "t", "body": "b", "tags": [nul]}}),
        (
            member,
            "mutation($id: ID!, $t: String) { refineIdea(id: $id, input: {title: $t}) { id } }",
            {"id": idea["id"], "t": f"t{nul}"},
        ),
        (product_team, SET_STATUS, {"id": idea["id"], "status": "UNDER_REVIEW", "note": f"n{nul}"}),
        (member, COMMENT, {"id": idea["id"], "body": f"b{nul}"}),
        (
            member,
            "mutation($id: ID!, $r: String!) { flagComment(id: $id, reason: $r) }",
            {"id": remark["id"], "r": f"r{nul}"},
        ),
        (member, "mutation($l: String!) { createApiKey(label: $l, scope: READ) { id } }", {"l": f"l{nul}"}),
        (member, "mutation($d: String) { updateProfile(input: {displayName: $d}) { id } }", {"d": f"d{nul}"}),
        (member, "mutation($d: String) { updateProfile(input: {organization: $d}) { id } }", {"d": f"d{nul}"}),
        (member, "query($t: String!) { ideas(search: $t) { totalCount } }", {"t": f"a{nul}"}),
        (member, "query($t: String!) { ideas(tag: $t) { totalCount } }", {"t": f"a{nul}"}),
        (member, "query($t: String!) { similarIdeas(text: $t) { id } }", {"t": f"a{nul}b"}),
        (member, "query($t: String!) { experts(tag: $t) { id } }", {"t": f"a{nul}"}),
    ]
    for caller, query, variables in cases:
        assert caller.error_codes(query, **variables) == ["BAD_USER_INPUT"], (query, variables)
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
    assert anonymous(url).error_codes(login, e=f"a{nul}b@example.org", p=PASSWORD) == ["UNAUTHENTICATED"]
    assert anonymous(url).error_codes(login, e=member.email, p=f"{PASSWORD}{nul}") == ["UNAUTHENTICATED"]


def test_mutation_flood_is_rate_limited(url: str) -> None:
    flooder = register(url)  # a member of its own: it stays limited for a while
    garbage = 'mutation { withdrawVote(ideaId: "not-an-id") }'  # refused after the limiter, no upstream call
    seen: list[str] = []
    for _ in range(300):
        body = flooder(garbage)
        seen += codes(body)
        if "RATE_LIMITED" in seen:
            break
    assert seen[0] == "NOT_FOUND" and seen[-1] == "RATE_LIMITED", seen[-3:]
    assert len(seen) > 100  # a generous burst first (then it refills: 10 a second by default)
    extensions = body["errors"][0]["extensions"]
    assert extensions["retryAfter"] >= 1 and extensions["retryable"] is True
    # reads are not limited by it
    assert flooder.ok("{ me { id } }") == {"me": {"id": flooder.id}}
