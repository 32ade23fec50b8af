"""graphql-transport-ws only, auth from connection_init, and the per-connection limit; served
by a real uvicorn on a free port, in front of the real services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.ids import encode_global_id
from tests.gateway.support import GatewayFactory, World

PROTOCOL = "graphql-transport-ws"
IDEA_CHANGED = "subscription($id: ID!) { ideaChanged(id: $id) { id score } }"


@pytest.fixture
async def url(make_gateway: GatewayFactory) -> AsyncIterator[str]:
    """A gateway served by uvicorn: its ws:// URL."""
    gateway = await make_gateway(max_subscriptions_per_connection=3)
    async with gateway.serve() as served:
        yield served


async def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]


async def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await receive(ws)
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.asyncio
async def test_bad_token_is_rejected(url: str) -> None:
    async with connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer not.a.token"}}))
        assert await closed_code(ws) == 4403


@pytest.mark.asyncio
async def test_legacy_protocol_is_refused(url: str) -> None:
    async with connect(url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        assert await closed_code(ws) == 4406


@pytest.mark.asyncio
async def test_subscriptions_over_websocket(url: str, world: World) -> None:
    author, me = await world.stakeholders("Author", "Ada")
    idea = encode_global_id("Idea", await world.idea(author))
    token = me.token

    async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
        await ws.send(json.dumps(message))

    async with connect(url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert await receive(ws) == {"type": "connection_ack"}
        for n in range(3):
            await send(
                ws, {"id": str(n), "type": "subscribe", "payload": {"query": IDEA_CHANGED, "variables": {"id": idea}}}
            )
        await send(
            ws, {"id": "over", "type": "subscribe", "payload": {"query": IDEA_CHANGED, "variables": {"id": idea}}}
        )
        message = await receive(ws)
        assert (message["id"], message["type"]) == ("over", "error")
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"

        # an unknown idea ends its subscription with NOT_FOUND
        await send(ws, {"id": "0", "type": "complete"})
        missing = encode_global_id("Idea", "00000000-0000-0000-0000-000000000001")
        await send(
            ws, {"id": "x", "type": "subscribe", "payload": {"query": IDEA_CHANGED, "variables": {"id": missing}}}
        )
        message = await receive(ws)
        assert message["id"] == "x"
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await receive(ws) == {"id": "x", "type": "complete"}

        # queries work over the socket too, with the connection's identity
        await send(ws, {"id": "q", "type": "subscribe", "payload": {"query": "{ me { displayName } }"}})
        assert await receive(ws) == {"id": "q", "type": "next", "payload": {"data": {"me": {"displayName": "Ada"}}}}
        assert await receive(ws) == {"id": "q", "type": "complete"}

        # a bad document is an error for that operation only, with a code
        await send(ws, {"id": "s", "type": "subscribe", "payload": {"query": "subscription { ideaChanged("}})
        message = await receive(ws)
        assert (message["id"], message["type"]) == ("s", "error")
        assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
