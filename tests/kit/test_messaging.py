"""The outbox relay and the consumer runner on a real PostgreSQL and a real nats-server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from devstack.testing import Infra, migrated_database
from devstack.waiting import eventually
from shared.consumer import ConsumerRunner, Subscription
from shared.db import create_sessionmaker
from shared.events.catalogue import Payload, StakeholderKind, StakeholderRegistered, subject_of
from shared.events.envelope import Envelope
from shared.messaging import connect_nats, ensure_streams
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork

SUBJECT = subject_of(StakeholderRegistered)


@pytest.fixture
async def kit(infra: Infra) -> Any:
    url = await migrated_database(infra, "stakeholders", "kit_messaging")
    from shared.db import create_engine

    engine = create_engine(ServiceSettings(service_name="kit", database_url=url))
    nc = await connect_nats(infra.nats_url, "kit-test")
    await ensure_streams(nc)
    yield url, engine, create_sessionmaker(engine), nc
    await nc.close()
    await engine.dispose()


def registration(stakeholder_id: uuid.UUID) -> StakeholderRegistered:
    return StakeholderRegistered(
        stakeholder_id=stakeholder_id, display_name="Kit", kind=StakeholderKind.PARTNER, role="MEMBER"
    )


def registered(stakeholder_id: uuid.UUID) -> Envelope:
    return Envelope.of(registration(stakeholder_id), aggregate_version=1)


async def committed(maker: Any, payload: Payload) -> Envelope:
    """`payload` published through a unit of work that commits."""
    async with maker() as session:
        uow = UnitOfWork(session)
        envelope = uow.emit(payload, aggregate_version=1)
        await uow.commit()
    return envelope


async def copies_in_stream(nc: Any, event_id: uuid.UUID) -> int:
    """How many messages of the stream carry this event id (read with a throwaway consumer
    until the consumer reports nothing pending)."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(SUBJECT, durable=f"count-{uuid.uuid4().hex[:8]}", stream="STAKEHOLDERS")
    found = 0

    async def read_to_the_end() -> bool:
        nonlocal found
        try:
            msgs = await sub.fetch(500, timeout=2)
        except TimeoutError:  # nats.errors.TimeoutError, or asyncio's when the fetch's own wait expires
            msgs = []
        for msg in msgs:
            found += Envelope.model_validate_json(msg.data).id == event_id
            await msg.ack()
        return not msgs and (await sub.consumer_info()).num_pending == 0

    await eventually(read_to_the_end, timeout=60, interval=0, what="the stream read to its end")
    await sub.unsubscribe()
    return found


async def test_event_is_published_once_even_if_the_relay_crashes_before_marking_it_sent(kit: Any) -> None:
    url, engine, maker, nc = kit
    event = await committed(maker, registration(uuid.uuid4()))

    class CrashAfterPublish(OutboxRelay):
        async def _mark_sent(self, conn: Any, ids: list[uuid.UUID]) -> None:
            raise RuntimeError("crash between publish and mark-sent")

    with pytest.raises(RuntimeError):
        await CrashAfterPublish(engine, nc, database_url=url).publish_batch()
    async with engine.connect() as conn:
        sent_at = (await conn.execute(text("SELECT sent_at FROM outbox WHERE id = :i"), {"i": event.id})).scalar_one()
    assert sent_at is None, "the crashed batch must stay unsent"

    await OutboxRelay(engine, nc, database_url=url).drain()
    async with engine.connect() as conn:
        sent_at = (await conn.execute(text("SELECT sent_at FROM outbox WHERE id = :i"), {"i": event.id})).scalar_one()
    assert sent_at is not None
    assert await copies_in_stream(nc, event.id) == 1, "Nats-Msg-Id dedup must drop the second publish"


async def test_outbox_row_is_only_written_with_its_transaction(kit: Any) -> None:
    _url, engine, maker, _nc = kit
    async with maker() as session:
        uow = UnitOfWork(session)
        event = uow.emit(registration(uuid.uuid4()), aggregate_version=1)

        async def commit_fails() -> None:
            raise RuntimeError("the COMMIT fails after the outbox row was written")

        session.commit = commit_fails  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await uow.commit()
        await uow.rollback()
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM outbox WHERE id = :i"), {"i": event.id})).scalar_one()
    assert count == 0


async def test_invalid_payload_never_reaches_the_outbox(kit: Any) -> None:
    """Only catalogue payloads can be emitted, and they are validated when they are built."""
    _, _, maker, _ = kit
    with pytest.raises(ValidationError):
        StakeholderRegistered.model_validate({"stakeholder_id": "not-a-uuid", "display_name": "x", "kind": "X"})

    class NotInTheCatalogue(Payload):
        stakeholder_id: uuid.UUID

    async with maker() as session:
        uow = UnitOfWork(session)
        with pytest.raises(LookupError):
            uow.emit(NotInTheCatalogue(stakeholder_id=uuid.uuid4()))
        with pytest.raises(ValueError):
            uow.emit(registration(uuid.uuid4()))  # a VERSIONED stream: the aggregate's version is required


async def _run_until_handled(runner: ConsumerRunner, engine: Any, js: Any, durable: str, ids: list[uuid.UUID]) -> None:
    """Run the consumer until every event of `ids` is in its inbox and its durable consumer has
    nothing pending or unacked (a bounded wait), then stop it."""

    async def handled() -> bool:
        async with engine.connect() as conn:
            done = (
                await conn.execute(
                    text("SELECT count(*) FROM inbox WHERE consumer = :c AND event_id = ANY(:e)"),
                    {"c": durable, "e": ids},
                )
            ).scalar_one()
        if done != len(ids):
            return False
        info = await js.consumer_info("STAKEHOLDERS", durable)
        return info.num_ack_pending == 0 and info.num_pending == 0

    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(handled, timeout=30, what=f"{durable} handled and acked every event")
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_redelivered_event_changes_nothing_and_transient_failures_are_retried(kit: Any) -> None:
    _, engine, maker, nc = kit
    stakeholder_id = uuid.uuid4()
    event = registered(stakeholder_id)
    attempts = 0

    async def credit(uow: UnitOfWork, payload: StakeholderRegistered) -> None:
        nonlocal attempts
        if uow.handling is None or uow.handling.id != event.id:
            return  # other tests' events on the same stream
        attempts += 1
        if attempts == 1:
            raise ConnectionError("transient: the first attempt fails")
        await uow.session.execute(
            text(
                "INSERT INTO tag_activity (stakeholder_id, tag, activity) VALUES (:s, 'kit', 1) "
                "ON CONFLICT (stakeholder_id, tag) DO UPDATE SET activity = tag_activity.activity + 1"
            ),
            {"s": payload.stakeholder_id},
        )

    durable = f"kit-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(nc, maker, [Subscription(durable, "STAKEHOLDERS", {SUBJECT: credit})], max_deliver=5)
    js = nc.jetstream()
    body = event.model_dump_json().encode()
    # The same event twice under two message ids: as a redelivery after the dedup window would be.
    await js.publish(SUBJECT, body, headers={"Nats-Msg-Id": f"{event.id}-a"})
    await js.publish(SUBJECT, body, headers={"Nats-Msg-Id": f"{event.id}-b"})

    await _run_until_handled(runner, engine, js, durable, [event.id])

    async with engine.connect() as conn:
        activity = (
            await conn.execute(
                text("SELECT activity FROM tag_activity WHERE stakeholder_id = :s AND tag = 'kit'"),
                {"s": stakeholder_id},
            )
        ).scalar_one()
    assert activity == 1, "two deliveries, one effect"
    assert attempts == 2, "the transient failure was retried once, the duplicate skipped by the inbox"


async def test_one_trace_is_followed_from_a_request_through_the_outbox_into_a_consumer(kit: Any) -> None:
    from opentelemetry import trace

    from shared.tracing import configure_tracing, tracer

    url, engine, maker, nc = kit
    configure_tracing("kit", exporter_enabled=False, endpoint="")
    with tracer().start_as_current_span("gateway request") as request_span:
        event = await committed(maker, registration(uuid.uuid4()))  # the trace context goes with the outbox row
    origin = request_span.get_span_context().trace_id

    seen: list[int] = []

    async def record(uow: UnitOfWork, payload: StakeholderRegistered) -> None:
        if uow.handling is not None and uow.handling.id == event.id:
            seen.append(trace.get_current_span().get_span_context().trace_id)

    await OutboxRelay(engine, nc, database_url=url).drain()  # headers: traceparent + Nats-Msg-Id
    durable = f"trace-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(nc, maker, [Subscription(durable, "STAKEHOLDERS", {SUBJECT: record})])
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: seen, what="the event consumed")
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == [origin], "the consumer's span continues the request's trace"


async def _activity(engine: Any, stakeholder_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT stakeholder_id, activity FROM tag_activity WHERE stakeholder_id = ANY(:s) AND tag = 'kit'"),
            {"s": stakeholder_ids},
        )
        return {r.stakeholder_id: r.activity for r in rows}


async def test_a_fetched_batch_is_applied_in_one_transaction_and_one_failing_event_spoils_none(kit: Any) -> None:
    """Events fetched together share one transaction (one commit: their inbox rows carry the same
    transaction time); when one of them fails, the batch is undone and every event is handled on
    its own: the others applied once, the failing one retried."""
    _, engine, maker, nc = kit
    js = nc.jetstream()

    async def run(fail_once: int | None) -> tuple[list[uuid.UUID], list[uuid.UUID], dict[uuid.UUID, int], str]:
        people = [uuid.uuid4() for _ in range(5)]
        events = [registered(p) for p in people]
        ours = {e.id: i for i, e in enumerate(events)}
        calls: dict[int, int] = {}

        async def credit(uow: UnitOfWork, payload: StakeholderRegistered) -> None:
            if uow.handling is None or uow.handling.id not in ours:
                return  # other tests' events on the same stream
            i = ours[uow.handling.id]
            calls[i] = calls.get(i, 0) + 1
            if i == fail_once and calls[i] == 1:
                raise ConnectionError("transient: the first attempt fails")
            await uow.session.execute(
                text("INSERT INTO tag_activity (stakeholder_id, tag, activity) VALUES (:s, 'kit', 1)"),
                {"s": payload.stakeholder_id},
            )

        for event in events:  # all in the stream before the consumer starts: one fetch takes them
            await js.publish(SUBJECT, event.model_dump_json().encode(), headers={"Nats-Msg-Id": str(event.id)})
        durable = f"kit-{uuid.uuid4().hex[:8]}"
        runner = ConsumerRunner(nc, maker, [Subscription(durable, "STAKEHOLDERS", {SUBJECT: credit})], max_deliver=5)
        await _run_until_handled(runner, engine, js, durable, [e.id for e in events])
        return people, [e.id for e in events], await _activity(engine, people), durable

    people, ids, activity, durable = await run(fail_once=None)
    assert activity == {p: 1 for p in people}
    async with engine.connect() as conn:
        times = (
            await conn.execute(
                text("SELECT count(DISTINCT processed_at) FROM inbox WHERE consumer = :c AND event_id = ANY(:e)"),
                {"c": durable, "e": ids},
            )
        ).scalar_one()
    assert times < len(ids), "events fetched together were committed together"

    people, ids, activity, _ = await run(fail_once=2)
    assert activity == {p: 1 for p in people}, "the failing event retried, the others applied exactly once"
