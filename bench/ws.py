"""A minimal graphql-transport-ws client (the `websockets` package): connection_init with the
token, subscribe, receive `next` payloads per operation id, answer pings, complete."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

PROTOCOL = "graphql-transport-ws"


class SubscriptionError(Exception):
    pass


class Subscription:
    """The `next` payloads of one operation, each with its arrival time (perf_counter)."""

    def __init__(self, client: GraphQLWS, op_id: str) -> None:
        self.client = client
        self.id = op_id
        self.queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.error: str | None = None

    async def next(self, timeout: float) -> tuple[float, dict[str, Any]]:
        """(arrival time, data) of the next result; TimeoutError after `timeout` seconds."""
        arrived, payload = await asyncio.wait_for(self.queue.get(), timeout)
        if self.error is not None and not payload:
            raise SubscriptionError(self.error)
        return arrived, payload

    async def complete(self) -> None:
        await self.client.send({"id": self.id, "type": "complete"})
        self.client.operations.pop(self.id, None)


class GraphQLWS:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.replace("http://", "ws://").replace("https://", "wss://")
        self.token = token
        self.ws: ClientConnection | None = None
        self.operations: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 10.0) -> GraphQLWS:
        ws = await asyncio.wait_for(
            connect(self.url, subprotocols=[Subprotocol(PROTOCOL)], open_timeout=timeout, max_size=2**22), timeout
        )
        self.ws = ws
        payload = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await self.send({"type": "connection_init", "payload": payload})
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
            if message.get("type") == "connection_ack":
                break
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            raise SubscriptionError(f"connection refused: {message}")
        self._reader = asyncio.create_task(self._read())
        return self

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(orjson.dumps(message).decode())

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> Subscription:
        op_id = str(next(self._ids))
        subscription = Subscription(self, op_id)
        self.operations[op_id] = subscription
        await self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        return subscription

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                arrived = time.perf_counter()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.send({"type": "pong"})
                    continue
                subscription = self.operations.get(message.get("id", ""))
                if subscription is None:
                    continue
                if kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        subscription.error = str(payload["errors"])[:300]
                    subscription.queue.put_nowait((arrived, payload.get("data") or {}))
                elif kind in ("error", "complete"):
                    subscription.error = str(message.get("payload") or kind)[:300]
                    subscription.queue.put_nowait((arrived, {}))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
