"""The service app factory: every domain service is built here the same way.

Everything is wired in `lifespan` (nothing connects at import time): logging, tracing, the
database engine, the JWT verifier, NATS (connected in the background with endless retries),
the stream definitions, the outbox relay and the consumer runner. Every service answers
`/healthz` (live), `/readyz` (database and NATS reachable) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import Requirement, optional_principal, require_principal, verifier_from
from shared.consumer import ConsumerRunner, Subscription
from shared.db import create_engine, create_read_sessionmaker, create_sessionmaker
from shared.edge import Checks, RequestMiddleware, ops_routes, within
from shared.logs import configure_logging, get_logger
from shared.messaging import connect_nats_retrying, ensure_streams
from shared.outbox import OutboxRelay, prune_messaging
from shared.periodic import run_periodically
from shared.problems import (
    ERROR_BY_CODE,
    PROBLEM_JSON,
    Problem,
    UnexpectedErrorMiddleware,
    install_problem_handlers,
    problem_response,
)
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing

MAX_BODY_BYTES = 1_048_576


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


class StaticPathMethods:
    """A path that names a static resource (`/ideas/batch`) is never handed to a parameter route
    (`PATCH /ideas/{idea_id}`, which would answer 422 "not a UUID"): a method the resource does
    not serve is 405 with `Allow` (RFC 9110), as for any other path."""

    def __init__(self, app: ASGIApp, route_methods: list[tuple[str, Any, list[str]]]) -> None:
        self.app = app
        self.static = [(regex, methods) for template, regex, methods in route_methods if "{" not in template]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            served = {m for regex, methods in self.static if regex.match(path) for m in methods}
            if served and scope["method"] not in served:
                response = problem_response(Problem("BAD_USER_INPUT", "Method Not Allowed", status=405))
                response.headers["Allow"] = ", ".join(sorted(served))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
        app.state.read_sessionmaker = create_read_sessionmaker(engine)
        app.state.jwt_verifier = verifier_from(settings)
        if on_startup is not None:
            await on_startup(app, runtime)
        runtime.tasks.append(asyncio.create_task(_messaging(runtime, list(subscriptions))))

        def prune() -> Awaitable[dict[str, int]]:
            return prune_messaging(engine, settings.messaging_retention_seconds)

        runtime.tasks.append(
            asyncio.create_task(
                run_periodically("messaging_prune", prune, settings.messaging_prune_interval, runtime.stop)
            )
        )
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
        # RequestContextMiddleware makes the request's span (continuing the caller's trace) and
        # the Prometheus metrics; FastAPI's own instrumentation would add a second server span and
        # one span per dependency, endpoint and serialization on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    route_methods = [
        (route.path_format, route.path_regex, sorted(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    app.state.route_methods = route_methods
    install_problem_handlers(app)
    # Innermost first: unexpected errors become answers inside RequestMiddleware (which then
    # sees their status), and never reach uvicorn (which would drop the connection).
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(StaticPathMethods, route_methods=route_methods)
    app.add_middleware(RequestMiddleware, service=name, max_body_bytes=MAX_BODY_BYTES)
    for router in routers:
        app.include_router(router)
    app.router.routes.extend(ops_routes(_readiness))
    document_problems(app, routers)
    return app


# --- OpenAPI: what the services really answer ------------------------------------------------------
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is the public contract's error code.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(ERROR_BY_CODE)},
        "retry_after": {"type": "integer", "description": "RATE_LIMITED, UNAVAILABLE: seconds to wait"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
# Every route may answer these (as application/problem+json): bad input, auth, visibility,
# conflicts, the body cap, rate limits, a dependency that is down. 500 is never documented.
PROBLEM_STATUSES = {
    400: "Bad user input",
    401: "Unauthenticated: missing, malformed, expired or revoked token",
    403: "Forbidden",
    404: "Not found (or not visible to the caller)",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Bad user input (wrong type or shape)",
    429: "Rate limited",
    503: "Unavailable: a dependency is down; retry later",
}
BEARER_SCHEME = "bearer"


def _auth_need(dependant: Dependant) -> str | None:
    """Whether the route reads the caller's JWT: "required", "optional", or None."""
    found: str | None = None
    for dep in dependant.dependencies:
        if dep.call is require_principal or isinstance(dep.call, Requirement):
            return "required"
        if dep.call is optional_principal:
            found = "optional"
        inner = _auth_need(dep)
        if inner == "required":
            return inner
        found = found or inner
    return found


def document_problems(app: FastAPI, routers: Sequence[APIRouter] = ()) -> None:
    """Complete the generated OpenAPI document: the problem+json answers every route may give
    (replacing FastAPI's default 422 shape, which the problem handler never sends), and the
    bearer scheme on the routes that read a token (optional where anonymous callers are served).
    Fuzzers and clients then see the API as it behaves."""
    generate = app.openapi
    needs = {
        (router.prefix + route.path_format, method.lower()): _auth_need(route.dependant)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    problem = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}

    def openapi() -> dict[str, Any]:
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status, description in PROBLEM_STATUSES.items():
                    responses[str(status)] = {"description": description, **problem}
                need = needs.get((path, method))
                if need == "required":
                    operation["security"] = [{BEARER_SCHEME: []}]
                elif need == "optional":
                    operation["security"] = [{}, {BEARER_SCHEME: []}]
        # FastAPI's validation-error models are referenced by nothing now.
        for unused in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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


async def _readiness(request: Request) -> tuple[bool, Checks]:
    """A service is ready when its database answers and NATS is connected."""
    runtime: Runtime = request.app.state.runtime

    async def database() -> None:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = {
        "database": await within(database()),
        "nats": "ok" if runtime.nc is not None and runtime.nc.is_connected else "unreachable",
    }
    return all(v == "ok" for v in checks.values()), checks
