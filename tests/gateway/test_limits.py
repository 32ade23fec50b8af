"""Depth, alias, token and cost limits, and `first` capped at 100."""

from __future__ import annotations

import pytest
from graphql import parse

from gateway.errors import GatewaySchema
from gateway.limits import operation_cost
from tests.gateway.support import Gateway, World, codes


def cost(schema: GatewaySchema, query: str, variables: dict[str, object] | None = None) -> int:
    return operation_cost(schema._schema, parse(query), None, variables)


def test_cost_is_the_product_of_firsts(schema: GatewaySchema) -> None:
    assert cost(schema, "{ me { id } }") == 0
    assert cost(schema, "{ ideas(first: 50) { totalCount } }") == 50
    assert cost(schema, "{ ideas { totalCount } }") == 20  # the schema's default
    assert cost(schema, "{ ideas(first: null) { totalCount } }") == 20
    assert cost(schema, "query($n: Int) { ideas(first: $n) { totalCount } }") == 20
    nested = "{ ideas(first: 50) { edges { node { comments(first: 20) { edges { node { id } } } } } } }"
    assert cost(schema, nested) == 50 + 50 * 20
    with_vars = (
        "query($a: Int, $b: Int = 7) { ideas(first: $a) { edges { node { comments(first: $b) { totalCount } } } } }"
    )
    assert cost(schema, with_vars, {"a": 10}) == 10 + 70
    fragment = """query { ideas(first: 10) { ...F } similarIdeas(text: "x", first: 3) { id } }
      fragment F on IdeaConnection { edges { node { comments(first: 10) { totalCount } } } }"""
    assert cost(schema, fragment) == 10 + 100 + 3


@pytest.mark.asyncio
async def test_cost_over_the_limit_is_refused(gateway: Gateway) -> None:
    query = "query($n: Int) { ideas(first: $n) { edges { node { comments(first: 100) { totalCount } } } } }"
    result = await gateway.execute(query, {"n": 60})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert "cost" in result.errors[0].message
    assert gateway.count() == 0  # refused before resolving anything
    result = await gateway.execute(query, {"n": 10})
    assert result.errors is None


@pytest.mark.asyncio
async def test_first_over_100_is_refused(gateway: Gateway) -> None:
    for query in (
        "{ ideas(first: 101) { totalCount } }",
        "{ ideas(first: -1) { totalCount } }",
        '{ similarIdeas(text: "x", first: 500) { id } }',
        '{ experts(tag: "x", first: 101) { id } }',
    ):
        result = await gateway.execute(query)
        assert codes(result) == ["BAD_USER_INPUT"], query
    assert gateway.count() == 0
    result = await gateway.execute("{ ideas(first: 100) { totalCount } }")
    assert result.errors is None


@pytest.mark.asyncio
async def test_nested_first_over_100_is_refused(gateway: Gateway, world: World) -> None:
    await world.idea(await world.stakeholder())
    result = await gateway.execute("{ ideas(first: 1) { edges { node { comments(first: 101) { totalCount } } } } }")
    assert codes(result) == ["BAD_USER_INPUT"]


@pytest.mark.asyncio
async def test_depth_limit(gateway: Gateway) -> None:
    def nest(levels: int) -> str:
        return "{ ideas { edges { node { " + "mergedInto { " * levels + "id" + " }" * levels + " } } } }"

    assert (await gateway.execute(nest(8))).errors is None
    deep = nest(14)
    result = await gateway.execute(deep)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert "depth" in result.errors[0].message


@pytest.mark.asyncio
async def test_alias_limit(gateway: Gateway) -> None:
    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    result = await gateway.execute(many)
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert "aliases" in result.errors[0].message
    ok = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + " }"
    assert (await gateway.execute(ok)).errors is None


@pytest.mark.asyncio
async def test_token_limit(gateway: Gateway) -> None:
    huge = "{ " + " ".join("__typename" for _ in range(3100)) + " }"
    result = await gateway.execute(huge)
    assert codes(result) == ["BAD_USER_INPUT"]


@pytest.mark.asyncio
async def test_limits_hold_on_repeated_queries(gateway: Gateway) -> None:
    # the parser and validation caches must not let a refused document through the second time
    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    for _ in range(3):
        assert codes(await gateway.execute(many)) == ["BAD_USER_INPUT"]
