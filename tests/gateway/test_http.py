"""The ASGI app: bad bodies get GraphQL-shaped errors with a code (never a 500), the body cap,
batching, and the operations endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest

from tests.gateway.support import Gateway, GatewayFactory, World, raising


@asynccontextmanager
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's HTTP client (the gateway itself stops after the test)."""
    yield gateway.http


def error_code(response: httpx.Response) -> str:
    body = response.json()
    return str(body["errors"][0]["extensions"]["code"])


@pytest.mark.asyncio
async def test_query_over_http(gateway: Gateway, world: World) -> None:
    await world.idea(await world.stakeholder())
    query = f'{{ ideas(tag: "{world.tag}") {{ totalCount }} }}'  # this test's ideas
    async with client(gateway) as http:
        response = await http.post("/graphql", json={"query": query})
        assert response.status_code == 200
        assert response.json() == {"data": {"ideas": {"totalCount": 1}}}
        assert response.headers["x-request-id"]
        response = await http.get("/graphql", params={"query": query})
        assert response.json() == {"data": {"ideas": {"totalCount": 1}}}


@pytest.mark.asyncio
async def test_upstream_calls_carry_trace_and_request_ids(gateway: Gateway) -> None:
    async with client(gateway) as http:
        await http.post("/graphql", json={"query": "{ ideas { totalCount } }"}, headers={"x-request-id": "req-1"})
    seen = [request.headers for request in gateway.requests("ideas")]
    assert seen[0]["x-request-id"] == "req-1"
    assert seen[0]["x-correlation-id"] == "req-1"
    assert "traceparent" in seen[0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"5",
        b'"a string"',
        b"[1, 2]",
        b'{"query": 5}',
        b'{"query": "{ me { id } }", "variables": []}',
        b"",
    ],
)
async def test_bad_bodies_get_a_coded_error(gateway: Gateway, body: bytes) -> None:
    async with client(gateway) as http:
        response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.asyncio
async def test_wrong_content_type_and_method(gateway: Gateway) -> None:
    async with client(gateway) as http:
        response = await http.post("/graphql", content=b"query", headers={"content-type": "text/plain"})
        assert response.status_code == 400
        assert error_code(response) == "BAD_USER_INPUT"
        response = await http.put("/graphql", json={"query": "{ me { id } }"})
        assert response.status_code == 405
        assert error_code(response) == "BAD_USER_INPUT"
        # mutations are refused over GET
        response = await http.get(
            "/graphql", params={"query": 'mutation { login(email: "a", password: "b") { token } }'}
        )
        assert response.status_code == 400
        assert error_code(response) == "BAD_USER_INPUT"
        # subscriptions are WebSocket only
        response = await http.post("/graphql", json={"query": 'subscription { ideaChanged(id: "x") { id } }'})
        assert response.status_code == 400
        assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.asyncio
async def test_body_size_cap(make_gateway: GatewayFactory) -> None:
    async with client(await make_gateway(max_body_bytes=1024)) as http:
        big = orjson.dumps({"query": "{ me { id } }", "variables": {"x": "y" * 2000}})
        response = await http.post("/graphql", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert error_code(response) == "BAD_USER_INPUT"
        assert "too large" in response.json()["errors"][0]["message"]

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while streaming
            for _ in range(5):
                yield b" " * 400

        response = await http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413


@pytest.mark.asyncio
async def test_batches_are_capped(gateway: Gateway, world: World) -> None:
    async with client(gateway) as http:
        ok = [{"query": "{ me { id } }"}, {"query": f'{{ ideas(tag: "{world.tag}") {{ totalCount }} }}'}]
        response = await http.post("/graphql", json=ok)
        assert response.status_code == 200
        assert response.json() == [{"data": {"me": None}}, {"data": {"ideas": {"totalCount": 0}}}]
        response = await http.post("/graphql", json=[{"query": "{ me { id } }"}] * 11)
        assert response.status_code == 400
        assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.asyncio
async def test_graphiql_and_introspection_follow_the_setting(make_gateway: GatewayFactory) -> None:
    introspect = {"query": "{ __schema { queryType { name } } }"}
    async with client(await make_gateway(environment="production")) as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 404
        assert error_code(response) == "NOT_FOUND"
        response = await http.post("/graphql", json=introspect)
        assert error_code(response) == "BAD_USER_INPUT"
    async with client(await make_gateway(environment="development")) as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
        response = await http.post("/graphql", json=introspect)
        assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.asyncio
async def test_operations_endpoints(gateway: Gateway) -> None:
    async with client(gateway) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        response = await http.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["ideas"] == "ok"
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert "http_requests_total{" in response.text and 'service="gateway"' in response.text

        gateway.fail("votes", raising(httpx.ConnectError, "refused"))  # the votes service is down
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["votes"] == "unreachable"
