"""The service app factory: every domain service is built here the same way.

Everything is wired in `lifespan` (nothing connects at import time): logging, tracing, the
database engine, the JWT verifier, NATS (connected in the background with endless retries),
the stream definitions, the outbox relay and the consumer runner. Every service answers
`/healthz` (live), `/readyz` (database and NATS reachable) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import JwtVerifier
from shared.consumer import ConsumerRunner, Subscription
from shared.db import create_engine, create_sessionmaker
from shared.logs import configure_logging, get_logger
from shared.messaging import connect_nats_retrying, ensure_streams
from shared.outbox import OutboxRelay
from shared.problems import Problem, install_problem_handlers, problem_response
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing, extract_context, tracer

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("http_request_seconds", "HTTP request latency", ["service", "method", "route"])


@dataclass
class Runtime:
    """What a running service holds; reachable as `app.state.runtime`."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    nc: NATS | None = None
    relay: OutboxRelay | None = None
    consumers: ConsumerRunner | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


StartupHook = Callable[[FastAPI, "Runtime"], Awaitable[None]]


class RequestContextMiddleware:
    """Binds request_id / correlation_id to logs, continues the caller's trace, records
    metrics and caps request bodies. Pure ASGI (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, service: str, max_body_bytes: int = 1_048_576) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.log = get_logger("http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        correlation_id = headers.get("x-correlation-id") or request_id
        structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            response = problem_response(Problem("PAYLOAD_TOO_LARGE", "request body too large", status=413))
            await response(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        path = scope.get("path", "")
        try:
            with tracer().start_as_current_span(f"{scope['method']} {path}", context=extract_context(headers)):
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            REQUESTS.labels(self.service, scope["method"], route_path, str(status)).inc()
            LATENCY.labels(self.service, scope["method"], route_path).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                self.log.info("request", method=scope["method"], path=path, status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")


def create_service_app(
    *,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    subscriptions: Sequence[Subscription] = (),
    on_startup: StartupHook | None = None,
) -> FastAPI:
    name = settings.service_name

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, settings.log_level, settings.log_json)
        configure_tracing(name, settings.otel_exporter_enabled, settings.otel_exporter_otlp_endpoint)
        engine = create_engine(settings)
        runtime = Runtime(settings=settings, engine=engine, sessionmaker=create_sessionmaker(engine))
        app.state.runtime = runtime
        app.state.sessionmaker = runtime.sessionmaker
        app.state.jwt_verifier = JwtVerifier(
            jwks_url=settings.jwks_url,
            public_key_pem=settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        if on_startup is not None:
            await on_startup(app, runtime)
        runtime.tasks.append(asyncio.create_task(_messaging(runtime, list(subscriptions))))
        get_logger("app").info("service_started", port=settings.port)
        try:
            yield
        finally:
            runtime.stop.set()
            for task in runtime.tasks:
                task.cancel()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            if runtime.nc is not None and not runtime.nc.is_closed:
                # Every publish was acknowledged and every message acked explicitly: nothing
                # to drain, and a drain would wait on the idle pull requests.
                await runtime.nc.close()
            await engine.dispose()

    app = FastAPI(
        title=f"{name} service",
        lifespan=lifespan,
        docs_url="/docs" if settings.is_development else None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=name)
    for router in routers:
        app.include_router(router)
    app.include_router(_ops_router())
    return app


async def _messaging(runtime: Runtime, subscriptions: list[Subscription]) -> None:
    """Connect to NATS (retrying until it answers), declare the streams, then run the relay
    and the consumers until the service stops."""
    settings = runtime.settings
    nc = await connect_nats_retrying(settings.nats_url, settings.service_name, runtime.stop)
    if nc is None:
        return
    runtime.nc = nc
    log = get_logger("app")
    while not runtime.stop.is_set():
        try:
            await ensure_streams(nc, settings.nats_stream_replicas)
            break
        except Exception as exc:
            log.warning("ensure_streams_failed", error=repr(exc))
            await asyncio.sleep(1)
    runtime.relay = OutboxRelay(
        runtime.engine,
        nc,
        database_url=settings.resolved_database_url(),
        batch_size=settings.relay_batch_size,
        poll_interval=settings.relay_poll_interval,
    )
    runtime.consumers = ConsumerRunner(
        nc,
        runtime.sessionmaker,
        subscriptions,
        batch_size=settings.consumer_batch_size,
        max_deliver=settings.consumer_max_deliver,
        ack_wait=settings.consumer_ack_wait,
    )
    await asyncio.gather(runtime.relay.run(runtime.stop), runtime.consumers.run(runtime.stop))


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["nats"] = "ok" if runtime.nc is not None and runtime.nc.is_connected else "unreachable"
        ready = all(v == "ok" for v in checks.values())
        if not ready:
            return problem_response(Problem("UNAVAILABLE", "not ready", checks=checks))
        return JSONResponse({"status": "ready", "checks": checks})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
