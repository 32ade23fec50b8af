"""The consumer loop, one for every service: durable pull consumers with explicit ack.

For each message: validate the envelope and its payload by the catalogue model; in ONE
transaction record the event id in the inbox (per consumer) and apply the handler's effect;
ack after commit. A redelivered event finds its inbox row and changes nothing. Transient
failures `nak(delay)`; after max deliveries the message is `term()`ed and logged loudly.
Fetches loop with heartbeats; any subscription error re-binds after a pause (endless)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, DateTime, func, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.events.catalogue import payload_model
from shared.events.envelope import Envelope
from shared.live import flush_live
from shared.logs import get_logger
from shared.messaging import stream_for_subject
from shared.tracing import extract_context, tracer

Handler = Callable[[AsyncSession, Envelope, BaseModel], Awaitable[None]]

EVENTS = Counter(
    "events_consumed_total", "Events taken from JetStream, by durable consumer and outcome", ["durable", "outcome"]
)


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True)
    event_id: uuid.UUID = Field(primary_key=True)
    processed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class PermanentError(Exception):
    """The event can never be handled: terminate it instead of retrying."""


@dataclass(frozen=True)
class Subscription:
    """One durable consumer: `durable` is shared by every replica of the service."""

    durable: str
    subjects: dict[str, Handler]  # event type -> handler; all in one stream

    @property
    def stream(self) -> str:
        streams = {stream_for_subject(s) for s in self.subjects}
        assert len(streams) == 1, f"{self.durable}: one stream per subscription"
        return streams.pop()


class ConsumerRunner:
    def __init__(
        self,
        nc: NATS,
        sessionmaker: async_sessionmaker[AsyncSession],
        subscriptions: list[Subscription],
        *,
        batch_size: int = 100,
        max_deliver: int = 10,
        ack_wait: float = 30.0,
    ) -> None:
        self._nc = nc
        self._sessionmaker = sessionmaker
        self._subscriptions = subscriptions
        self._batch_size = batch_size
        self._max_deliver = max_deliver
        self._ack_wait = ack_wait
        self._log = get_logger("consumer")
        self.handled = 0
        self.last_fetch_ok: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._loop(sub, stop) for sub in self._subscriptions))

    def consumer_config(self, sub: Subscription) -> ConsumerConfig:
        subjects = sorted(sub.subjects)
        return ConsumerConfig(
            durable_name=sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=self._max_deliver,
            ack_wait=self._ack_wait,
            max_ack_pending=10_000,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )

    async def _loop(self, sub: Subscription, stop: asyncio.Event) -> None:
        self._nc.jetstream()
        while not stop.is_set():
            try:
                psub = await self._bind(sub)
                while not stop.is_set():
                    try:
                        msgs = await psub.fetch(self._batch_size, timeout=2, heartbeat=0.5)
                    except nats.errors.TimeoutError:
                        self.last_fetch_ok[sub.durable] = asyncio.get_running_loop().time()
                        continue
                    self.last_fetch_ok[sub.durable] = asyncio.get_running_loop().time()
                    for msg in msgs:
                        await self.handle(sub, msg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.warning("consumer_rebind", durable=sub.durable, error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)

    async def _bind(self, sub: Subscription) -> JetStreamContext.PullSubscription:
        """Create or update the durable consumer (idempotent), then bind to it."""
        js = self._nc.jetstream()
        await js.add_consumer(sub.stream, self.consumer_config(sub))
        return await js.pull_subscribe_bind(durable=sub.durable, stream=sub.stream)

    async def handle(self, sub: Subscription, msg: Msg) -> None:
        try:
            envelope = Envelope.model_validate_json(msg.data)
            handler = sub.subjects.get(envelope.type)
            payload = payload_model(envelope.type).model_validate(envelope.data)
        except (ValidationError, LookupError) as exc:
            self._log.error("event_rejected_invalid", durable=sub.durable, subject=msg.subject, error=str(exc))
            EVENTS.labels(sub.durable, "invalid").inc()
            await msg.term()
            return
        if handler is None:  # not ours (a filter wider than our handlers): nothing to do
            await msg.ack()
            return
        structlog.contextvars.bind_contextvars(
            correlation_id=envelope.correlation_id, event_id=str(envelope.id), event_type=envelope.type
        )
        try:
            with tracer().start_as_current_span(f"consume {envelope.type}", context=extract_context(msg.headers)):
                first_time = await self.apply(sub.durable, envelope, payload, handler)
            await msg.ack()
            self.handled += 1
            EVENTS.labels(sub.durable, "applied" if first_time else "duplicate").inc()
        except PermanentError as exc:
            self._log.error("event_terminated", durable=sub.durable, error=str(exc))
            await msg.term()
        except Exception as exc:
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            if delivered >= self._max_deliver:
                self._log.error("event_dead_lettered", durable=sub.durable, deliveries=delivered, error=repr(exc))
                EVENTS.labels(sub.durable, "dead_lettered").inc()
                await msg.term()
            else:
                EVENTS.labels(sub.durable, "retried").inc()
                self._log.warning("event_retry", durable=sub.durable, deliveries=delivered, error=repr(exc))
                await msg.nak(delay=min(0.2 * 2**delivered, 10.0))
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id", "event_id", "event_type")

    async def apply(self, consumer: str, envelope: Envelope, payload: BaseModel, handler: Handler) -> bool:
        """Inbox row and effect in one transaction. Returns False for an event seen before."""
        async with self._sessionmaker() as session:
            async with session.begin():
                first_time = await self._record(session, consumer, envelope.id)
                if not first_time:
                    return False
                await handler(session, envelope, payload)
            await flush_live(session, self._nc)
        return True

    @staticmethod
    async def _record(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
        """The inbox row; False when this consumer has handled the event before."""
        return (
            await session.execute(
                text(
                    "INSERT INTO inbox (consumer, event_id) VALUES (:c, :e) ON CONFLICT DO NOTHING RETURNING event_id"
                ),
                {"c": consumer, "e": event_id},
            )
        ).first() is not None
