"""The ASGI app: bad bodies get GraphQL-shaped errors with a code (never a 500), the body cap,
batching, and the operations endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest

from gateway.main import create_app
from gateway.settings import GatewaySettings
from shared.auth import JwtVerifier
from tests.gateway.fakes import AUDIENCE, ISSUER, PUBLIC_PEM, FakeUpstream


@asynccontextmanager
async def client(fake: FakeUpstream, **settings: object) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        GatewaySettings(log_json=False, **settings),  # type: ignore[arg-type]
        transports=fake.transports(),
        verifier=JwtVerifier(jwks_url=None, public_key_pem=PUBLIC_PEM, issuer=ISSUER, audience=AUDIENCE),
        connect_nats=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def error_code(response: httpx.Response) -> str:
    body = response.json()
    return str(body["errors"][0]["extensions"]["code"])


@pytest.mark.asyncio
async def test_query_over_http(fake: FakeUpstream) -> None:
    fake.add_idea(fake.add_stakeholder())
    async with client(fake) as http:
        response = await http.post("/graphql", json={"query": "{ ideas { totalCount } }"})
        assert response.status_code == 200
        assert response.json() == {"data": {"ideas": {"totalCount": 1}}}
        assert response.headers["x-request-id"]
        response = await http.get("/graphql", params={"query": "{ ideas { totalCount } }"})
        assert response.json() == {"data": {"ideas": {"totalCount": 1}}}


@pytest.mark.asyncio
async def test_upstream_calls_carry_trace_and_request_ids(fake: FakeUpstream) -> None:
    seen: list[httpx.Headers] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"items": [], "total_count": 0, "has_next_page": False, "end_cursor": None})

    fake.overrides["ideas"] = record
    async with client(fake) as http:
        await http.post("/graphql", json={"query": "{ ideas { totalCount } }"}, headers={"x-request-id": "req-1"})
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
async def test_bad_bodies_get_a_coded_error(fake: FakeUpstream, body: bytes) -> None:
    async with client(fake) as http:
        response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.asyncio
async def test_wrong_content_type_and_method(fake: FakeUpstream) -> None:
    async with client(fake) as http:
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
async def test_body_size_cap(fake: FakeUpstream) -> None:
    async with client(fake, max_body_bytes=1024) as http:
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
async def test_batches_are_capped(fake: FakeUpstream) -> None:
    async with client(fake) as http:
        ok = [{"query": "{ me { id } }"}, {"query": "{ ideas { totalCount } }"}]
        response = await http.post("/graphql", json=ok)
        assert response.status_code == 200
        assert response.json() == [{"data": {"me": None}}, {"data": {"ideas": {"totalCount": 0}}}]
        response = await http.post("/graphql", json=[{"query": "{ me { id } }"}] * 11)
        assert response.status_code == 400
        assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.asyncio
async def test_graphiql_and_introspection_follow_the_setting(fake: FakeUpstream) -> None:
    introspect = {"query": "{ __schema { queryType { name } } }"}
    async with client(fake, environment="production") as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 404
        assert error_code(response) == "NOT_FOUND"
        response = await http.post("/graphql", json=introspect)
        assert error_code(response) == "BAD_USER_INPUT"
    async with client(fake, environment="development") as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert "graphiql" in response.text.lower()
        response = await http.post("/graphql", json=introspect)
        assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


@pytest.mark.asyncio
async def test_operations_endpoints(fake: FakeUpstream) -> None:
    async with client(fake) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        response = await http.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["ideas"] == "ok"
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert "http_requests_total{" in response.text and 'service="gateway"' in response.text

        def down(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        fake.overrides["votes"] = down
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["votes"] == "unreachable"
