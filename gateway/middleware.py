"""Pure ASGI middleware: request/correlation ids bound to logs and forwarded upstream, the
caller's trace continued, request metrics, and the request body cap (GraphQL-shaped 413)."""

from __future__ import annotations

import time
import uuid

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.view import error_body
from shared.logs import get_logger
from shared.tracing import extract_context, tracer

REQUESTS = Counter("gateway_http_requests_total", "Gateway HTTP requests", ["method", "path", "status"])
LATENCY = Histogram("gateway_http_request_seconds", "Gateway HTTP request latency", ["method", "path"])
KNOWN_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.log = get_logger("gateway.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        correlation_id = headers.get("x-correlation-id") or request_id
        structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        path = scope.get("path", "")
        if scope["type"] == "websocket":
            try:
                with tracer().start_as_current_span("WS /graphql", context=extract_context(headers)):
                    await self.app(scope, receive, send)
            finally:
                structlog.contextvars.unbind_contextvars("request_id", "correlation_id")
            return

        method = scope["method"]
        metric_path = path if path in KNOWN_PATHS else "other"
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            with tracer().start_as_current_span(f"{method} {metric_path}", context=extract_context(headers)):
                if method == "POST":
                    body = await self._read_body(headers, receive)
                    if body is None:
                        await self._too_large(send_wrapper)
                        return
                    receive = _replay(body, receive)
                await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            REQUESTS.labels(method, metric_path, str(status)).inc()
            LATENCY.labels(method, metric_path).observe(elapsed)
            if metric_path not in ("/healthz", "/readyz", "/metrics"):
                self.log.info("request", method=method, path=path, status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the cap (declared or streamed)."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
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

    async def _too_large(self, send: Send) -> None:
        body = error_body(f"request body too large (limit {self.max_body_bytes} bytes)", "BAD_USER_INPUT")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
