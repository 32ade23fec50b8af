"""What every HTTP process of the platform (the four services and the gateway) does at its edge,
written once: the request middleware and the operations routes.

`RequestMiddleware` (pure ASGI, cheaper than BaseHTTPMiddleware) binds request_id /
correlation_id to the logs (and answers with `x-request-id`), continues the caller's trace,
records the request metrics (`http_requests_total` and `http_request_seconds` by process,
method, route template and status), and caps request bodies: a body over the cap, declared or
streamed, is answered 413 in the process's own error shape (`too_large`) before the app reads any
of it. WebSocket connections get the ids and the span.

`ops_routes` serves `/healthz` (alive), `/readyz` (the process's own readiness checks; 503
problem+json naming the failing ones) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import get_logger
from shared.problems import Problem, problem_response
from shared.tracing import extract_context, tracer

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("http_request_seconds", "HTTP request latency", ["service", "method", "route"])
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Readiness: each check's name and "ok" or what is wrong; ready when every required one is "ok".
Checks = dict[str, str]
Readiness = Callable[[Request], Awaitable[tuple[bool, Checks]]]


def problem_too_large(limit: int) -> Response:
    return problem_response(Problem("PAYLOAD_TOO_LARGE", f"request body too large (limit {limit} bytes)"))


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        service: str,
        max_body_bytes: int,
        too_large: Callable[[int], Response] = problem_too_large,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.too_large = too_large
        self.log = get_logger("http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(
            request_id=request_id, correlation_id=headers.get("x-correlation-id") or request_id
        )
        try:
            if scope["type"] == "websocket":
                with tracer().start_as_current_span(f"WS {scope.get('path', '')}", context=extract_context(headers)):
                    await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, headers, request_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")

    async def _http(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], request_id: str) -> None:
        method, path = scope["method"], scope.get("path", "")
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            with tracer().start_as_current_span(f"{method} {path}", context=extract_context(headers)):
                body = await self._read_body(method, headers, receive)
                if body is None:
                    await self.too_large(self.max_body_bytes)(scope, receive, send_wrapper)
                    return
                if method not in NO_BODY_METHODS:
                    receive = _replay(body, receive)
                await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or (path if path in OPS_PATHS else "unmatched")
            elapsed = time.perf_counter() - start
            REQUESTS.labels(self.service, method, route, str(status)).inc()
            LATENCY.labels(self.service, method, route).observe(elapsed)
            if path not in OPS_PATHS:
                self.log.info("request", method=method, path=path, status=status, ms=round(elapsed * 1000, 2))

    async def _read_body(self, method: str, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body (read only for methods that carry one), or None when it is over the cap,
        declared or streamed."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        if method in NO_BODY_METHODS:
            return b""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def ops_routes(readiness: Readiness) -> list[BaseRoute]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, checks = await readiness(request)
        if not ready:
            return problem_response(Problem("UNAVAILABLE", "not ready", checks=checks))
        return JSONResponse({"status": "ready", "checks": checks})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


async def within(check: Awaitable[object], timeout: float = 2.0) -> str:
    """A readiness check's outcome: "ok", or what went wrong."""
    try:
        await asyncio.wait_for(check, timeout=timeout)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"
