"""HTTP between our own processes: httpx's API over aiohttp's connection pool.

httpx's own pool (httpcore) costs CPU that grows with the requests in flight: measured on loopback
with 64 concurrent requests, 2.2-3.5 ms of client CPU per request, against 0.5 ms through this
transport (BENCHMARKS.md, "before/after"). The gateway makes several upstream calls per GraphQL
request, so that cost was a large part of the platform's CPU per vote and per read. Callers keep
using `httpx.AsyncClient` (and tests can pass any httpx transport); only the transport changes."""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as _AiohttpTransport


class AiohttpTransport(_AiohttpTransport):
    """httpx_aiohttp's transport, with one correction: a request that could not connect at all
    is an `httpx.ConnectError` (the library reports it as a ConnectTimeout), because callers
    that fail over to another instance may only do so when nothing was sent."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as exc:
            if isinstance(exc.__cause__, aiohttp.ClientConnectorError) and not isinstance(exc, httpx.ConnectError):
                raise httpx.ConnectError(str(exc), request=request) from exc.__cause__
            raise
