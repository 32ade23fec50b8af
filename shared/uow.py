"""The unit of work: one transaction of a service and everything it publishes.

Use cases (service.py) get a `UnitOfWork`: they read and write through `uow.session` (adding and
flushing, never committing) and hand the catalogue payloads their domain functions return to
`uow.emit`. The boundary that owns the transaction -- the request's dependency, or the consumer
runner -- calls `commit()`: the collected events are written to the outbox in the same
transaction (subject, source and schema version from the catalogue's EventSpec), then COMMIT,
then the live hints (`uow.live`) go out to NATS. So a state change and its events are committed
together or not at all, and nothing else in the codebase writes the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.events.catalogue import Ordering, Payload, spec_for_model
from shared.events.envelope import Envelope
from shared.logs import get_logger
from shared.outbox import OutboxRow, outbox_row, write_outbox


class UnitOfWork:
    def __init__(self, session: AsyncSession, *, read_only: bool = False) -> None:
        self.session = session
        self.read_only = read_only
        # Set by the consumer runner while a handler runs: the event being applied.
        self.handling: Envelope | None = None
        self._rows: list[OutboxRow] = []
        self._live: dict[str, dict[str, Any]] = {}

    def emit(self, payload: Payload, *, aggregate_version: int | None = None) -> Envelope:
        """Publish `payload` when this unit of work commits. On a VERSIONED stream the aggregate's
        version after the change is required (see the catalogue's ordering policy)."""
        if self.read_only:
            raise RuntimeError("a read-only unit of work publishes nothing")
        ordering = spec_for_model(type(payload)).ordering
        if (ordering is Ordering.VERSIONED) != (aggregate_version is not None):
            raise ValueError(f"{type(payload).__name__}: aggregate_version goes with VERSIONED streams, and only there")
        envelope = Envelope.of(payload, aggregate_version)
        # Built now: the correlation id and trace context are those of the change, not of the commit.
        self._rows.append(outbox_row(envelope))
        return envelope

    def live(self, subject: str, data: dict[str, Any]) -> None:
        """A hint for the gateway's live subscriptions, sent after the commit (never relied on for
        state: the outbox carries the events). One per subject per transaction is enough."""
        self._live[subject] = data

    def event_time(self) -> datetime:
        """When the event being handled happened (in a consumer); now, in a request."""
        return self.handling.occurred_at if self.handling is not None else datetime.now(UTC)

    async def commit(self) -> None:
        if self._rows:
            await write_outbox(self.session, self._rows)
            self._rows = []
        await self.session.commit()

    async def rollback(self) -> None:
        self._rows = []
        self._live = {}
        await self.session.rollback()

    async def publish_live(self, nc: NATS | None) -> None:
        hints, self._live = self._live, {}
        if not hints or nc is None or not nc.is_connected:
            return
        try:
            for subject, data in hints.items():
                await nc.publish(subject, orjson.dumps(data))
        except Exception as exc:
            get_logger("live").warning("live_hint_failed", error=repr(exc))
