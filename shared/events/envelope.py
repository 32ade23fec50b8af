"""The one event envelope every service publishes and consumes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field

from shared.events.catalogue import Payload, spec_for_model


class Envelope(BaseModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    # The subject (`<context>.v1.<aggregate>.<event>`): the event type and where it is published.
    type: str
    # The payload schema's version (EventSpec.version).
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str
    correlation_id: str | None = None
    # The id of the aggregate the event is about (an idea id, a stakeholder id...).
    subject_id: str
    # On a VERSIONED stream: the aggregate's version after this event (1: the event that created
    # it). None on COMMUTATIVE streams, and on events written before versions existed.
    aggregate_version: int | None = None
    data: dict[str, Any]

    @classmethod
    def of(cls, payload: Payload, aggregate_version: int | None = None) -> Envelope:
        """Wrap a catalogue payload: type, source, schema version and subject id come from its
        EventSpec; the correlation id from the current request or consumed event (bound in
        structlog's context)."""
        spec = spec_for_model(type(payload))
        return cls(
            type=spec.subject,
            version=spec.version,
            source=spec.publisher,
            correlation_id=structlog.contextvars.get_contextvars().get("correlation_id"),
            subject_id=str(getattr(payload, spec.key)),
            aggregate_version=aggregate_version,
            data=payload.model_dump(mode="json"),
        )
