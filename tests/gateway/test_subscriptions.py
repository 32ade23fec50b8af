"""Subscriptions fed by the LiveHub: re-read with the subscriber's token, emitted only when
visible (and, for ideas, changed). NATS is replaced by calling `hub.dispatch` directly."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
import pytest

from gateway.errors import GatewaySchema
from gateway.ids import encode_global_id
from gateway.live import LiveHub
from tests.gateway.fakes import FakeUpstream, codes, context, make_runtime, make_token

IDEA_CHANGED = "subscription($id: ID!) { ideaChanged(id: $id) { id score author { displayName } } }"
COMMENT_ADDED = "subscription($id: ID!) { commentAdded(ideaId: $id) { id body author { displayName } } }"


def envelope(subject: str, **data: Any) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": subject,
            "version": 1,
            "occurred_at": "2025-01-01T12:00:00Z",
            "source": "test",
            "subject_id": str(data.get("idea_id", "")),
            "data": {k: str(v) for k, v in data.items()},
        }
    )


async def until(condition: Any, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("condition not met")


async def not_yet(task: asyncio.Task[Any]) -> bool:
    await asyncio.sleep(0.05)
    return not task.done()


async def close(stream: Any, pending: asyncio.Future[Any]) -> None:
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await stream.aclose()


async def subscribe(
    schema: GatewaySchema, fake: FakeUpstream, hub: LiveHub, query: str, idea: uuid.UUID, token: str | None
) -> Any:
    runtime = make_runtime(fake, hub=hub)
    result = await schema.subscribe(
        query,
        variable_values={"id": encode_global_id("Idea", idea)},
        context_value=context(runtime, token, websocket=True),
    )
    return result


def live(idea: uuid.UUID) -> tuple[str, bytes]:
    return f"live.idea.{idea}", orjson.dumps({"idea_id": str(idea)})


@pytest.mark.asyncio
async def test_idea_changed_emits_on_change_only(schema: GatewaySchema, fake: FakeUpstream) -> None:
    hub = LiveHub()
    author = fake.add_stakeholder(name="Author")
    idea = fake.add_idea(author)
    stream = await subscribe(schema, fake, hub, IDEA_CHANGED, idea, make_token(fake.add_stakeholder()))
    next_item = asyncio.ensure_future(stream.__anext__())
    await until(lambda: hub._listeners)
    await until(lambda: fake.count("ideas") == 1)  # the baseline read
    # a vote event before the ideas service applied it: nothing changed yet, nothing sent
    hub.dispatch("votes.v1.vote.cast", envelope("votes.v1.vote.cast", idea_id=idea))
    assert await not_yet(next_item)
    assert fake.count("ideas") == 2  # but it was read again
    # the ideas service applied it and says so
    fake.ideas[idea]["score"] = 3
    hub.dispatch(*live(idea))
    result = await asyncio.wait_for(next_item, 2)
    assert result.errors is None
    assert result.data == {
        "ideaChanged": {"id": encode_global_id("Idea", idea), "score": 3, "author": {"displayName": "Author"}}
    }
    # the same state is not sent twice
    next_item = asyncio.ensure_future(stream.__anext__())
    hub.dispatch(*live(idea))
    assert await not_yet(next_item)
    # an event of another context about the idea: re-read, sent when changed
    fake.ideas[idea]["status"] = "PLANNED"
    hub.dispatch("ideas.v1.idea.status_changed", envelope("ideas.v1.idea.status_changed", idea_id=idea))
    result = await asyncio.wait_for(next_item, 2)
    assert result.data["ideaChanged"]["score"] == 3
    # other ideas' events are not ours
    next_item = asyncio.ensure_future(stream.__anext__())
    hub.dispatch(*live(uuid.uuid4()))
    assert await not_yet(next_item)
    await close(stream, next_item)
    await until(lambda: not hub._listeners)


@pytest.mark.asyncio
async def test_idea_changed_when_the_change_beat_the_subscription(schema: GatewaySchema, fake: FakeUpstream) -> None:
    # The vote landed between subscribing and the baseline read: the LIVE trigger still emits.
    hub = LiveHub()
    idea = fake.add_idea(fake.add_stakeholder())
    fake.ideas[idea]["score"] = 2
    stream = await subscribe(schema, fake, hub, IDEA_CHANGED, idea, None)
    next_item = asyncio.ensure_future(stream.__anext__())
    await until(lambda: fake.count("ideas") == 1)
    hub.dispatch(*live(idea))
    result = await asyncio.wait_for(next_item, 2)
    assert result.data["ideaChanged"]["score"] == 2
    await stream.aclose()


@pytest.mark.asyncio
async def test_idea_changed_stops_emitting_when_invisible(schema: GatewaySchema, fake: FakeUpstream) -> None:
    hub = LiveHub()
    idea = fake.add_idea(fake.add_stakeholder())
    stream = await subscribe(schema, fake, hub, IDEA_CHANGED, idea, None)
    next_item = asyncio.ensure_future(stream.__anext__())
    await until(lambda: fake.count("ideas") == 1)
    fake.ideas[idea]["visible_to"] = ["EMPLOYEE"]
    fake.ideas[idea]["score"] = 9
    hub.dispatch(*live(idea))
    assert await not_yet(next_item)
    await close(stream, next_item)


@pytest.mark.asyncio
async def test_subscribing_to_an_invisible_idea_is_not_found(schema: GatewaySchema, fake: FakeUpstream) -> None:
    hub = LiveHub()
    secret = fake.add_idea(fake.add_stakeholder(kind="EMPLOYEE"), visible_to=["EMPLOYEE"])
    stream = await subscribe(schema, fake, hub, IDEA_CHANGED, secret, make_token(fake.add_stakeholder()))
    result = await asyncio.wait_for(stream.__anext__(), 2)
    assert codes(result) == ["NOT_FOUND"]
    assert not hub._listeners


@pytest.mark.asyncio
async def test_comment_added(schema: GatewaySchema, fake: FakeUpstream) -> None:
    hub = LiveHub()
    author = fake.add_stakeholder(name="Commenter")
    idea = fake.add_idea(author)
    stream = await subscribe(schema, fake, hub, COMMENT_ADDED, idea, make_token(fake.add_stakeholder()))
    next_item = asyncio.ensure_future(stream.__anext__())
    await until(lambda: fake.count("ideas") == 1)
    comment = fake.add_comment(idea, author, body="First!")
    subject = "comments.v1.comment.added"
    hub.dispatch(subject, envelope(subject, idea_id=idea, comment_id=comment, author_id=author))
    result = await asyncio.wait_for(next_item, 2)
    assert result.errors is None
    assert result.data == {
        "commentAdded": {
            "id": encode_global_id("Comment", comment),
            "body": "First!",
            "author": {"displayName": "Commenter"},
        }
    }
    # a comment on another idea is not sent
    other = fake.add_idea(author)
    elsewhere = fake.add_comment(other, author)
    next_item = asyncio.ensure_future(stream.__anext__())
    hub.dispatch(subject, envelope(subject, idea_id=other, comment_id=elsewhere, author_id=author))
    assert await not_yet(next_item)
    await close(stream, next_item)


def test_hub_routes_every_trigger() -> None:
    hub = LiveHub()
    a, b = uuid.uuid4(), uuid.uuid4()
    with hub.listen(("idea", a), coalesce=False) as on_a, hub.listen(("idea", b), coalesce=True) as on_b:
        hub.dispatch(f"live.idea.{a}", orjson.dumps({"idea_id": str(a)}))
        hub.dispatch("votes.v1.votes.moved", envelope("votes.v1.votes.moved", source_id=a, target_id=b))
        hub.dispatch("ideas.v1.idea.merged", envelope("ideas.v1.idea.merged", idea_id=a, target_id=b))
        hub.dispatch("comments.v1.comment.hidden", envelope("comments.v1.comment.hidden", idea_id=b))
        hub.dispatch("votes.v1.vote.cast", b"not json")
        assert on_a.pending() == 3
        assert on_b.pending() == 1  # coalesced: one pending re-read is enough
    assert not hub._listeners
