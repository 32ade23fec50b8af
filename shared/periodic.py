"""Upkeep that a service runs in the background, the same way for every job: now, then every
`interval` seconds until the app stops; a failure (the database away...) is logged and the job
runs again next round. Started from the app's lifespan, cancelled with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from shared.logs import get_logger


async def run_periodically(
    name: str, job: Callable[[], Awaitable[object]], interval: float, stop: asyncio.Event
) -> None:
    log = get_logger(name)
    while not stop.is_set():
        try:
            done = await job()
            if done:
                log.info(f"{name}_done", result=done)
        except Exception as exc:
            log.warning(f"{name}_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
