"""The event contract: one envelope, one pydantic model per event type, one catalogue."""

from shared.events.catalogue import CATALOGUE, EventSpec, payload_model
from shared.events.envelope import Envelope, new_event

__all__ = ["CATALOGUE", "Envelope", "EventSpec", "new_event", "payload_model"]
