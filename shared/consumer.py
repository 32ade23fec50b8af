"""The consumer loop, one for every service: durable pull consumers with explicit ack.

Handlers are registered by payload type (`Consumers.handler`): `async def on_vote_cast(uow,
event: VoteCast) -> None`, calling the service layer. The payload type names the subject (from
the catalogue); a service's handlers of one stream share one durable consumer.

For each message: validate the envelope and its payload by the catalogue model; in ONE
transaction record the event id in the inbox (per consumer), apply the stream's ordering policy
(VERSIONED streams: an event older than the last one applied for its aggregate is skipped, see
shared/events/catalogue.py) and the handler's effect; ack after commit. The messages of one
fetch share that transaction (`handle_batch`: one commit per batch); if any of them fails, the
batch is undone and each is handled alone. A redelivered event finds its inbox row and changes
nothing. `RetryLater` and transient failures `nak(delay)`; `PermanentError`, and any failure after
max deliveries, `term()` the message and log it loudly (shared/events/failures.py).

Fetching is our own (`PullFetcher`), not nats-py's `PullSubscription.fetch`: that one raises on
a status message that answers an *earlier* pull request (e.g. "400 heartbeat value too large",
which its own lingering request gets when little of the fetch's time is left, or a 503 while the
server restarts) after it has received messages, and those messages are then dropped unacked
until `ack_wait` redelivers them (a consumer stalled 30+ s at start-up under load). Here every
data message that reaches the inbox is handled, whichever request it answers; a status other than
"no messages" / "request timeout" ends the fetch and re-binds. After a reconnect the loop re-binds
too (the durable is created again if the server lost it). Any error re-binds after a pause."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import typing
import uuid
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, func, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.events.catalogue import Ordering, Payload, spec_for_model, spec_of, stream_for_subject
from shared.events.envelope import Envelope
from shared.events.failures import PermanentError, RetryLater
from shared.logs import get_logger
from shared.tracing import extract_context, tracer
from shared.uow import UnitOfWork

P = TypeVar("P", bound=Payload)
Handler = Callable[[UnitOfWork, Any], Awaitable[None]]
Parsed = tuple[Envelope, Payload, Handler]  # a message's event, its payload and its handler

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


@contextlib.contextmanager
def _event_scope(msg: Msg, envelope: Envelope) -> Iterator[None]:
    """While one delivered event is handled: its ids on every log line, and the consumer's span,
    continuing the trace the event carries in its headers."""
    structlog.contextvars.bind_contextvars(
        correlation_id=envelope.correlation_id, event_id=str(envelope.id), event_type=envelope.type
    )
    try:
        with tracer().start_as_current_span(f"consume {envelope.type}", context=extract_context(msg.headers)):
            yield
    finally:
        structlog.contextvars.unbind_contextvars("correlation_id", "event_id", "event_type")


@dataclass(frozen=True)
class Subscription:
    """One durable consumer: `durable` is shared by every replica of the service."""

    durable: str
    stream: str
    subjects: dict[str, Handler]  # event type -> handler; all in `stream`


class Consumers:
    """A service's event handlers, registered by the payload type of their second parameter:

        consumers = Consumers("votes")

        @consumers.handler
        async def on_idea_proposed(uow: UnitOfWork, event: IdeaProposed) -> None: ...

    The catalogue must list the service among the event's consumers. One durable consumer per
    stream, named `<service>-<stream>` and shared by the service's replicas."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._handlers: dict[str, Handler] = {}

    def handler(self, fn: Callable[[UnitOfWork, P], Awaitable[None]]) -> Callable[[UnitOfWork, P], Awaitable[None]]:
        names = list(inspect.signature(fn).parameters)
        model = typing.get_type_hints(fn).get(names[1]) if len(names) == 2 else None
        if not (isinstance(model, type) and issubclass(model, Payload)):
            raise TypeError(f"{fn.__name__}: the second parameter must be annotated with a catalogue payload")
        spec = spec_for_model(model)
        if self.service not in spec.consumers:
            raise LookupError(f"the catalogue does not list {self.service} as a consumer of {spec.subject}")
        if spec.subject in self._handlers:
            raise LookupError(f"{self.service} handles {spec.subject} twice")
        self._handlers[spec.subject] = fn
        return fn

    @property
    def subscriptions(self) -> list[Subscription]:
        streams: dict[str, dict[str, Handler]] = {}
        for subject, fn in self._handlers.items():
            streams.setdefault(stream_for_subject(subject), {})[subject] = fn
        return [Subscription(f"{self.service}-{name.lower()}", name, subjects) for name, subjects in streams.items()]


# After the first message of a fetch, how long to wait for more before handing them over.
LINGER_SECONDS = 0.002

# Statuses that only end one pull request: no messages now, the request expired, or it was
# turned away for the moment (409: max waiting, leadership change...). Anything else re-binds.
_ENDS_REQUEST = frozenset({"404", "408", "409"})


def _status(msg: Msg) -> tuple[str, str] | None:
    """(status, description) of a JetStream status message; None for a data message."""
    headers = msg.headers
    if not headers or msg.data:
        return None
    status = headers.get("Status")
    return (str(status), str(headers.get("Description", ""))) if status else None


class PullFetcher:
    """Pull requests for one durable consumer, answered to an inbox of our own. Every data
    message that arrives there is returned by some fetch (late answers to an earlier request
    are picked up by the next one), so nothing delivered is left unacked until `ack_wait`."""

    def __init__(self, nc: NATS, stream: str, durable: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub: NatsSubscription | None = None
        self._inbox = ""
        self.statuses: Tally[str] = Tally()

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()

        async def arrived(msg: Msg) -> None:
            self._queue.put_nowait(msg)

        self._sub = await self._nc.subscribe(self._inbox, cb=arrived)

    def leftovers(self) -> list[Msg]:
        """Data messages that arrived after the last fetch (hand them over before closing)."""
        msgs = []
        while not self._queue.empty():
            msg = self._queue.get_nowait()
            if _status(msg) is None:
                msgs.append(msg)
        return msgs

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def fetch(self, batch: int, timeout: float) -> tuple[list[Msg], str | None]:
        """Up to `batch` messages within `timeout` seconds, and a problem (a status that calls
        for a re-bind) or None."""
        msgs: list[Msg] = []
        # Late answers to earlier requests first; their statuses are stale, data is not.
        while len(msgs) < batch and not self._queue.empty():
            msg = self._queue.get_nowait()
            status = _status(msg)
            if status is None:
                msgs.append(msg)
            else:
                self.statuses[status[0]] += 1
        if msgs:
            return msgs, None
        expires = max(timeout - 0.1, 0.05)
        request = {"batch": batch, "expires": int(expires * 1_000_000_000)}
        await self._nc.publish(self._subject, orjson.dumps(request), reply=self._inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(msgs) < batch:
            remaining = deadline - loop.time()
            if msgs:
                # Have some: hand them over now rather than wait for a full batch (that wait
                # delayed every projection and live update by up to `timeout` when traffic is
                # light). Later answers to this request are picked up by the next fetch.
                remaining = min(remaining, LINGER_SECONDS)
            if remaining <= 0:
                break
            try:
                msg = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            status = _status(msg)
            if status is None:
                msgs.append(msg)
                continue
            code, description = status
            self.statuses[code] += 1
            if code == "100":  # heartbeat / flow control: not asked for, harmless
                continue
            if code in _ENDS_REQUEST and "deleted" not in description.lower():
                if msgs or code != "408":
                    break
                continue  # a stale expiry of an earlier request: ours is still open
            return msgs, f"{code} {description}".strip()
        return msgs, None


class FetchProblem(Exception):
    """The server answered a pull request with a status that calls for a re-bind."""


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
        fetch_timeout: float = 2.0,
    ) -> None:
        self._nc = nc
        self._sessionmaker = sessionmaker
        self._subscriptions = subscriptions
        self._batch_size = batch_size
        self._max_deliver = max_deliver
        self._ack_wait = ack_wait
        self._fetch_timeout = fetch_timeout
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
        while not stop.is_set():
            fetcher: PullFetcher | None = None
            try:
                fetcher = await self._bind(sub)
                reconnects = self._reconnects()
                while not stop.is_set():
                    msgs, problem = await fetcher.fetch(self._batch_size, self._fetch_timeout)
                    self.last_fetch_ok[sub.durable] = asyncio.get_running_loop().time()
                    await self.handle_batch(sub, msgs)
                    if problem is not None:
                        raise FetchProblem(problem)
                    if self._reconnects() != reconnects:
                        self._log.info("consumer_rebind_after_reconnect", durable=sub.durable)
                        for msg in fetcher.leftovers():
                            await self.handle(sub, msg)
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.warning("consumer_rebind", durable=sub.durable, error=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
            finally:
                if fetcher is not None:
                    await fetcher.close()

    def _reconnects(self) -> int:
        return int(self._nc.stats.get("reconnects", 0))

    async def _bind(self, sub: Subscription) -> PullFetcher:
        """Create or update the durable consumer (idempotent), then pull from it."""
        await self._nc.jetstream().add_consumer(sub.stream, self.consumer_config(sub))
        fetcher = PullFetcher(self._nc, sub.stream, sub.durable)
        await fetcher.start()
        return fetcher

    async def handle_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        """A fetched batch in ONE transaction (one commit instead of one per event), acked after
        that commit. If any event of it fails, nothing of the batch is kept and each event is
        handled on its own instead (`handle`: retries, dead letters), so one bad event never
        holds back or changes the outcome of the others."""
        ready: list[tuple[Msg, Parsed]] = []
        for msg in msgs:
            parsed = await self._parse(sub, msg)
            if parsed is not None:
                ready.append((msg, parsed))
        if len(ready) <= 1:
            for msg, parsed in ready:
                await self.handle(sub, msg, parsed)
            return
        try:
            firsts = await self.apply_batch(sub.durable, ready)
        except Exception as exc:
            self._log.warning("consumer_batch_split", durable=sub.durable, size=len(ready), error=repr(exc))
            for msg, parsed in ready:
                await self.handle(sub, msg, parsed)
            return
        for (msg, _), first_time in zip(ready, firsts, strict=True):
            await msg.ack()
            self.handled += 1
            EVENTS.labels(sub.durable, "applied" if first_time else "duplicate").inc()

    async def _parse(self, sub: Subscription, msg: Msg) -> Parsed | None:
        """The event, its payload and its handler; None when the message is settled here
        (terminated as invalid, or acked as not ours)."""
        try:
            envelope = Envelope.model_validate_json(msg.data)
            handler = sub.subjects.get(envelope.type)
            payload = spec_of(envelope.type).model.model_validate(envelope.data)
        except (ValidationError, LookupError) as exc:
            self._log.error("event_rejected_invalid", durable=sub.durable, subject=msg.subject, error=str(exc))
            EVENTS.labels(sub.durable, "invalid").inc()
            await msg.term()
            return None
        if handler is None:  # not ours (a filter wider than our handlers): nothing to do
            await msg.ack()
            return None
        return envelope, payload, handler

    async def handle(self, sub: Subscription, msg: Msg, parsed: Parsed | None = None) -> None:
        parsed = parsed or await self._parse(sub, msg)
        if parsed is None:
            return
        with _event_scope(msg, parsed[0]):
            await self._settle(sub, msg, parsed)

    async def _settle(self, sub: Subscription, msg: Msg, parsed: Parsed) -> None:
        """Apply one event and ack it; or nak it (retry), or term it (permanent or dead)."""
        try:
            first_time = await self.apply(sub.durable, *parsed)
            await msg.ack()
            self.handled += 1
            EVENTS.labels(sub.durable, "applied" if first_time else "duplicate").inc()
        except PermanentError as exc:
            self._log.error("event_terminated", durable=sub.durable, error=str(exc))
            EVENTS.labels(sub.durable, "terminated").inc()
            await msg.term()
        except Exception as exc:
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            if delivered >= self._max_deliver:
                self._log.error("event_dead_lettered", durable=sub.durable, deliveries=delivered, error=repr(exc))
                EVENTS.labels(sub.durable, "dead_lettered").inc()
                await msg.term()
            else:
                EVENTS.labels(sub.durable, "retried").inc()
                log = self._log.info if isinstance(exc, RetryLater) else self._log.warning
                log("event_retry", durable=sub.durable, deliveries=delivered, error=repr(exc))
                await msg.nak(delay=min(0.2 * 2**delivered, 10.0))

    async def apply(self, consumer: str, envelope: Envelope, payload: Payload, handler: Handler) -> bool:
        """Inbox row and effect in one transaction. Returns False for an event seen before."""
        return (await self._in_transaction(consumer, [(None, (envelope, payload, handler))]))[0]

    async def apply_batch(self, consumer: str, events: list[tuple[Msg, Parsed]]) -> list[bool]:
        """Inbox rows and effects of several events in one transaction, in order. Each handler
        sees what the ones before it wrote (pending changes flushed, loaded objects expired)."""
        return await self._in_transaction(consumer, list(events))

    async def _in_transaction(self, consumer: str, events: Sequence[tuple[Msg | None, Parsed]]) -> list[bool]:
        """The events' inbox rows and effects in one transaction, in order. An event that comes
        with its message gets its own log and trace scope (`apply` runs inside its caller's)."""
        firsts: list[bool] = []
        async with self._sessionmaker() as session:
            uow = UnitOfWork(session)
            try:
                for msg, (envelope, payload, handler) in events:
                    with _event_scope(msg, envelope) if msg is not None else contextlib.nullcontext():
                        firsts.append(await self._apply_one(uow, consumer, envelope, payload, handler))
                await uow.commit()
            except BaseException:
                await uow.rollback()
                raise
            await uow.publish_live(self._nc)
        return firsts

    async def _apply_one(
        self, uow: UnitOfWork, consumer: str, envelope: Envelope, payload: Payload, handler: Handler
    ) -> bool:
        """One event inside the caller's transaction: its inbox row, the ordering policy, then its
        effect, written out (flushed, loaded objects expired) so that a next event in the same
        transaction sees it. False for an event seen before."""
        session = uow.session
        if not await self._record(session, consumer, envelope.id):
            return False
        if not await self._newer(session, consumer, envelope):
            EVENTS.labels(consumer, "superseded").inc()
            return True
        uow.handling = envelope
        try:
            await handler(uow, payload)
        finally:
            uow.handling = None
        await session.flush()
        session.expire_all()
        return True

    @staticmethod
    async def _newer(session: AsyncSession, consumer: str, envelope: Envelope) -> bool:
        """VERSIONED streams: True (and the version recorded) when the event is newer than the last
        one this consumer applied for its aggregate; False when it is superseded. The row stays
        locked until commit, so two events of one aggregate are never applied side by side."""
        if envelope.aggregate_version is None or spec_of(envelope.type).ordering is not Ordering.VERSIONED:
            return True
        return (
            await session.execute(
                text(
                    "INSERT INTO projection_version AS p (consumer, aggregate_id, version) VALUES (:c, :a, :v) "
                    "ON CONFLICT (consumer, aggregate_id) DO UPDATE SET version = EXCLUDED.version "
                    "WHERE p.version < EXCLUDED.version RETURNING version"
                ),
                {"c": consumer, "a": envelope.subject_id, "v": envelope.aggregate_version},
            )
        ).first() is not None

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
