"""The ideas service: ideas, revisions, tags, visibility, status workflow, merges, full-text and
trigram search; tallies, comment counts and trending kept from events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime

from fastapi import FastAPI

from services.ideas.api import router
from services.ideas.consumers import SUBSCRIPTIONS
from services.ideas.service import expire_trending
from shared.app import Runtime, create_service_app
from shared.periodic import run_periodically
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "ideas"
    port: int = 8002
    # How often day buckets that left the trending window are subtracted and deleted.
    trending_expiry_interval: float = 300.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def on_startup(app: FastAPI, runtime: Runtime) -> None:
        # Cancelled with the other runtime tasks when the app stops (and it watches runtime.stop).
        def expire() -> Awaitable[int]:
            return expire_trending(runtime.sessionmaker, datetime.now(UTC))

        runtime.tasks.append(
            asyncio.create_task(
                run_periodically("trending_expiry", expire, settings.trending_expiry_interval, runtime.stop)
            )
        )

    return create_service_app(settings=settings, routers=[router], subscriptions=SUBSCRIPTIONS, on_startup=on_startup)
