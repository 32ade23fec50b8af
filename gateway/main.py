"""The gateway app: `uvicorn gateway.main:create_app --factory`.

strawberry's own ASGI app at /graphql (HTTP POST/GET and graphql-transport-ws), /healthz,
/readyz (the four services answer their /healthz) and /metrics. Everything is built in the
lifespan; nothing connects at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from gateway.auth import Authenticator, TokenVerifier
from gateway.clients import build_services
from gateway.context import Runtime
from gateway.live import LiveHub
from gateway.ratelimit import RateLimiter
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from gateway.stakeholder_cache import SUBJECT as STAKEHOLDER_EVENTS
from gateway.stakeholder_cache import StakeholderCache
from gateway.view import GatewayGraphQL, error_response
from shared.auth import verifier_from
from shared.edge import Checks, RequestMiddleware, ops_routes
from shared.logs import configure_logging, get_logger
from shared.messaging import connect_nats_retrying
from shared.tracing import configure_tracing


async def _readiness(request: Request) -> tuple[bool, Checks]:
    """Ready when every service answers its /healthz. NATS only feeds subscriptions: reported,
    not required."""
    runtime: Runtime = request.app.state.runtime
    clients = runtime.services.all()
    answers = await asyncio.gather(*(client.healthz() for client in clients))
    checks = {client.name: "ok" if ok else "unreachable" for client, ok in zip(clients, answers, strict=True)}
    checks["nats"] = "ok" if runtime.hub.connected else "unreachable"
    return all(answers), checks


def _too_large(limit: int) -> Response:
    return error_response(413, f"request body too large (limit {limit} bytes)", "BAD_USER_INPUT")


async def _live_updates(
    settings: GatewaySettings, hub: LiveHub, stakeholders: StakeholderCache, stop: asyncio.Event
) -> None:
    """Connect to NATS in the background (endless retries) and subscribe once for the process:
    the live updates, and the stakeholder events that make cached stakeholders stale."""
    nc = await connect_nats_retrying(settings.nats_url, settings.service_name, stop)
    if nc is not None:
        await hub.start(nc)
        await nc.subscribe(STAKEHOLDER_EVENTS, cb=stakeholders.on_event)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    verifier: TokenVerifier | None = None,
    hub: LiveHub | None = None,
    connect_nats: bool = True,
) -> Starlette:
    """The app. Keyword arguments replace the outside world in tests: `transports` (by service
    name) for the HTTP calls, `verifier` for JWT checks, `hub` for live updates."""
    settings = settings or GatewaySettings()
    view = GatewayGraphQL(build_schema(settings), settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        configure_tracing(settings.service_name, settings.otel_exporter_enabled, settings.otel_exporter_otlp_endpoint)
        services = build_services(settings, transports)
        jwt_verifier = verifier or verifier_from(settings)
        live = hub or LiveHub(settings.subscription_queue_size)
        runtime = Runtime(
            settings=settings,
            services=services,
            authenticator=Authenticator(
                jwt_verifier,
                services.stakeholders,
                api_key_ttl=settings.api_key_token_cache_seconds,
                cache_size=settings.api_key_token_cache_size,
            ),
            hub=live,
            mutation_limiter=RateLimiter(
                settings.mutation_rate_per_second,
                settings.mutation_burst,
                name="mutations",
                replicas=settings.rate_limit_replicas,
                storage_uri=settings.rate_limit_storage_uri,
            ),
            anonymous_limiter=RateLimiter(
                settings.anonymous_mutation_rate_per_second,
                settings.anonymous_mutation_burst,
                name="anonymous",
                replicas=settings.rate_limit_replicas,
                storage_uri=settings.rate_limit_storage_uri,
            ),
            stakeholder_cache=StakeholderCache(settings.stakeholder_cache_seconds, settings.stakeholder_cache_size),
        )
        app.state.runtime = runtime
        view.runtime = runtime
        stop = asyncio.Event()
        task = None
        if connect_nats:
            task = asyncio.create_task(_live_updates(settings, live, runtime.stakeholder_cache, stop))
        get_logger("gateway").info("gateway_started", port=settings.port, graphiql=settings.graphiql_enabled)
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
            with suppress(Exception):
                await asyncio.wait_for(live.close(), timeout=5)
            await services.aclose()

    return Starlette(
        routes=[
            Route("/graphql", view),
            WebSocketRoute("/graphql", view),
            *ops_routes(_readiness),
        ],
        middleware=[
            Middleware(
                RequestMiddleware,
                service=settings.service_name,
                max_body_bytes=settings.max_body_bytes,
                too_large=_too_large,
            )
        ],
        lifespan=lifespan,
    )
