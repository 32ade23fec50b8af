"""The one event envelope every service publishes and consumes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field


class Envelope(BaseModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    # The subject, e.g. "votes.v1.vote.cast": the event type and where it is published.
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str
    correlation_id: str | None = None
    # The id of the aggregate the event is about (an idea id, a stakeholder id...).
    subject_id: str
    data: dict[str, Any]


def new_event(payload: BaseModel, *, source: str, subject_id: object) -> Envelope:
    """Wrap a catalogue payload in an envelope; the correlation id comes from the current
    request or consumed event (bound in structlog's context)."""
    from shared.events.catalogue import spec_for_model

    spec = spec_for_model(type(payload))
    ctx = structlog.contextvars.get_contextvars()
    return Envelope(
        type=spec.subject,
        version=spec.version,
        source=source,
        correlation_id=ctx.get("correlation_id"),
        subject_id=str(subject_id),
        data=payload.model_dump(mode="json"),
    )
