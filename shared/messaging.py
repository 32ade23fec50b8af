"""NATS connection and the JetStream stream definitions, in one place.

Every service calls `ensure_streams` at start-up: creating or updating the streams is
idempotent, so replicas and restarts are safe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NATS
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared.events.catalogue import ORDERING
from shared.logs import get_logger

# One stream per context. Duplicate window: the relay's Nats-Msg-Id dedup horizon.
STREAMS: dict[str, list[str]] = {name: [f"{name.lower()}.>"] for name in ORDERING}
DUPLICATE_WINDOW_SECONDS = 600.0
MAX_AGE_SECONDS = 30 * 24 * 3600.0


def stream_config(name: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=STREAMS[name],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def ensure_streams(nc: NATS, replicas: int = 1) -> None:
    js = nc.jetstream()
    for name in STREAMS:
        config = stream_config(name, replicas)
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with another configuration: bring it to ours.
            await js.update_stream(config)


async def connect_nats(
    url: str,
    name: str,
    *,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> NATS:
    """Connect with endless reconnects (nats-py gives up after ~2 minutes by default)."""
    log = get_logger("nats")

    async def disconnected() -> None:
        log.warning("nats_disconnected")

    async def reconnected() -> None:
        log.info("nats_reconnected")
        if on_reconnect is not None:
            await on_reconnect()

    async def error(exc: Exception) -> None:
        log.warning("nats_error", error=str(exc))

    return await nats.connect(
        servers=[url],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )


async def connect_nats_retrying(url: str, name: str, stop: asyncio.Event) -> NATS | None:
    """Keep trying until connected (a service may start before its NATS server)."""
    log = get_logger("nats")
    delay = 0.2
    while not stop.is_set():
        try:
            return await connect_nats(url, name)
        except Exception as exc:
            log.warning("nats_connect_failed", error=str(exc), retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)
    return None
