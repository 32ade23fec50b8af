"""The event contract: one envelope, one pydantic model per event type, one catalogue."""

from shared.events.catalogue import CATALOGUE, EventSpec, payload_model, subject_of
from shared.events.envelope import Envelope
from shared.events.failures import PermanentError, RetryLater

__all__ = ["CATALOGUE", "Envelope", "EventSpec", "PermanentError", "RetryLater", "payload_model", "subject_of"]
