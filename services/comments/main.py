"""The comment service: threaded comments on ideas, official answers, flags and hiding."""

from __future__ import annotations

from fastapi import FastAPI

from services.comments.api import router
from services.comments.consumers import SUBSCRIPTIONS
from shared.app import create_service_app
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "comments"
    port: int = 8004


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(settings=settings, routers=[router], subscriptions=SUBSCRIPTIONS)
