"""The ideas service: ideas, revisions, tags, visibility, status workflow, merges, full-text and
trigram search; tallies, comment counts and trending kept from events."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.ideas.api import router
from services.ideas.consumers import SUBSCRIPTIONS
from services.ideas.service import run_trending_expiry
from shared.app import Runtime, create_service_app
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
        runtime.tasks.append(
            asyncio.create_task(
                run_trending_expiry(runtime.sessionmaker, runtime.stop, settings.trending_expiry_interval)
            )
        )

    return create_service_app(settings=settings, routers=[router], subscriptions=SUBSCRIPTIONS, on_startup=on_startup)
