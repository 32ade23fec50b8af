"""The votes service: one vote per (idea, stakeholder), weight 1..3; keeps its own projection of
idea states to refuse votes on unknown, invisible, closed or merged ideas; moves votes on merges."""

from __future__ import annotations

from fastapi import FastAPI

from services.votes.api import router
from services.votes.consumers import SUBSCRIPTIONS
from shared.app import create_service_app
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "votes"
    port: int = 8003


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(settings=settings or Settings(), routers=[router], subscriptions=SUBSCRIPTIONS)
