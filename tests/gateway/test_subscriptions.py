"""Subscriptions fed by the LiveHub: re-read with the subscriber's token, emitted only when
visible (and, for ideas, changed). The gateway runs in front of the real services and is served
over graphql-transport-ws; NATS is replaced by calling `hub.dispatch` directly, so each trigger
arrives exactly when the test says. That nothing was sent is shown by what is sent next: a
later trigger, whose answer differs from what the earlier one would have sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from devstack.waiting import eventually
from gateway.ids import encode_global_id
from gateway.live import IDEA, LiveHub
from shared.events.catalogue import (
    CommentAdded,
    CommentHidden,
    IdeaMerged,
    IdeaStatusChanged,
    VoteCast,
    VotesMoved,
    subject_of,
)
from tests.gateway.support import Error, Gateway, GatewayFactory, Result, World, codes

IDEA_CHANGED = "subscription($id: ID!) { ideaChanged(id: $id) { id score status author { displayName } } }"
COMMENT_ADDED = "subscription($id: ID!) { commentAdded(ideaId: $id) { id body author { displayName } } }"
TIMEOUT = 20


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


def live(idea: uuid.UUID) -> tuple[str, bytes]:
    return f"live.idea.{idea}", orjson.dumps({"idea_id": str(idea)})


class Stream:
    """One subscription on a graphql-transport-ws connection: `__anext__` is its next answer."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def __anext__(self) -> Result:
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") != "1":
                continue
            if message["type"] == "next":
                return Result.of(message["payload"])
            if message["type"] == "error":
                return Result(None, [Error(e["message"], e.get("extensions"), e) for e in message["payload"]])
            raise StopAsyncIteration

    async def aclose(self) -> None:
        await self.ws.send(json.dumps({"id": "1", "type": "complete"}))


@asynccontextmanager
async def subscribe(gateway: Gateway, query: str, idea: uuid.UUID, token: str | None) -> AsyncIterator[Stream]:
    async with gateway.serve() as url, connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"type": "connection_ack"}
        variables = {"id": encode_global_id("Idea", idea)}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        yield Stream(ws)


async def close(stream: Stream, pending: asyncio.Future[Any]) -> None:
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await stream.aclose()


async def reads(gateway: Gateway, idea: uuid.UUID, count: int) -> None:
    """Until the gateway read the idea `count` times (and had its answers)."""
    path = f"/ideas/{idea}"
    await eventually(lambda: gateway.count("ideas", path) == count, what=f"{count} reads of the idea")


@pytest.mark.asyncio
async def test_idea_changed_emits_on_change_only(make_gateway: GatewayFactory, world: World) -> None:
    hub = LiveHub()
    gateway = await make_gateway(hub=hub)
    author, subscriber, voter = await world.stakeholders("Author", "Ada", "Voter")
    idea = await world.idea(author)
    await world.known(idea)
    async with subscribe(gateway, IDEA_CHANGED, idea, subscriber.token) as stream:
        next_item = asyncio.ensure_future(stream.__anext__())
        await eventually(lambda: hub._listeners, what="the subscription listening")
        await reads(gateway, idea, 1)  # the baseline read
        # a vote event before the ideas service applied it: nothing changed yet, nothing sent
        hub.dispatch(subject_of(VoteCast), envelope(subject_of(VoteCast), idea_id=idea))
        await reads(gateway, idea, 2)  # but it was read again
        # the ideas service applied it and says so: what is sent is the new state (had the
        # early event sent something, that would have come first, with score 0)
        await world.vote(idea, voter, weight=3)
        await world.until_idea(idea, "the vote counted", score=3)
        hub.dispatch(*live(idea))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.errors is None
        assert result.data == {
            "ideaChanged": {
                "id": encode_global_id("Idea", idea),
                "score": 3,
                "status": "OPEN",
                "author": {"displayName": "Author"},
            }
        }
        # the same state is not sent twice: the next thing sent is the next change
        next_item = asyncio.ensure_future(stream.__anext__())
        hub.dispatch(*live(idea))
        await reads(gateway, idea, 4)
        # an event of another context about the idea: re-read, sent when changed
        await world.move(idea, "UNDER_REVIEW", "PLANNED")
        hub.dispatch(subject_of(IdeaStatusChanged), envelope(subject_of(IdeaStatusChanged), idea_id=idea))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.data["ideaChanged"]["score"] == 3
        assert result.data["ideaChanged"]["status"] == "PLANNED", "the repeated state was sent"
        # other ideas' events are not ours: not even a re-read, and the next thing sent is ours
        next_item = asyncio.ensure_future(stream.__anext__())
        await world.move(idea, "IN_PROGRESS")
        hub.dispatch(*live(uuid.uuid4()))
        assert [listener.pending() for listener in hub._listeners[(IDEA, idea)]] == [0]
        hub.dispatch(subject_of(IdeaStatusChanged), envelope(subject_of(IdeaStatusChanged), idea_id=idea))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.data["ideaChanged"]["status"] == "IN_PROGRESS"
        assert gateway.count("ideas", f"/ideas/{idea}") == 6
        await close(stream, next_item)
        await eventually(lambda: not hub._listeners, what="the subscription gone")


@pytest.mark.asyncio
async def test_idea_changed_when_the_change_beat_the_subscription(make_gateway: GatewayFactory, world: World) -> None:
    # The vote landed between subscribing and the baseline read: the LIVE trigger still emits.
    hub = LiveHub()
    gateway = await make_gateway(hub=hub)
    author, voter = await world.stakeholders("Author", "Voter")
    idea = await world.idea(author)
    await world.known(idea)
    await world.vote(idea, voter, weight=2)
    await world.until_idea(idea, "the vote counted", score=2)
    async with subscribe(gateway, IDEA_CHANGED, idea, None) as stream:
        next_item = asyncio.ensure_future(stream.__anext__())
        await reads(gateway, idea, 1)
        hub.dispatch(*live(idea))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.data["ideaChanged"]["score"] == 2


@pytest.mark.asyncio
async def test_idea_changed_stops_emitting_when_invisible(make_gateway: GatewayFactory, world: World) -> None:
    """The subscriber's API key is a PRODUCT_TEAM member's, who sees every idea, until an ADMIN
    takes the role away. Every trigger exchanges the key again (no exchange cache here), so each
    re-read is made with the owner's role at that moment."""
    hub = LiveHub()
    gateway = await make_gateway(hub=hub, api_key_token_cache_seconds=0)
    author, voter = await asyncio.gather(world.stakeholder(kind="EMPLOYEE"), world.stakeholder(kind="EMPLOYEE"))
    watcher = await world.stakeholder(kind="CUSTOMER", role="PRODUCT_TEAM")
    key = await world.api_key(watcher)
    idea = await world.idea(author, visible_to=["EMPLOYEE"])
    await world.known(idea)
    path = f"/ideas/{idea}"
    async with subscribe(gateway, IDEA_CHANGED, idea, key) as stream:
        next_item = asyncio.ensure_future(stream.__anext__())
        await reads(gateway, idea, 1)
        await world.grant(watcher, "MEMBER")  # a CUSTOMER member: the idea is not theirs to see
        await world.vote(idea, voter, weight=3)
        await world.until_idea(idea, "the vote counted", score=3)
        hub.dispatch(*live(idea))
        await eventually(lambda: gateway.answers("ideas", path) == [200, 404], what="the re-read, invisible now")
        # visible again, and changed again: what is sent next is this state, not the one unseen
        await world.grant(watcher, "PRODUCT_TEAM")
        await world.vote(idea, await world.stakeholder(kind="EMPLOYEE"), weight=2)
        await world.until_idea(idea, "the second vote counted", score=5)
        hub.dispatch(*live(idea))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.data["ideaChanged"]["score"] == 5, "sent while the idea was invisible to the subscriber"
        await close(stream, next_item)


@pytest.mark.asyncio
async def test_subscribing_to_an_invisible_idea_is_not_found(make_gateway: GatewayFactory, world: World) -> None:
    hub = LiveHub()
    gateway = await make_gateway(hub=hub)
    author, outsider = await asyncio.gather(world.stakeholder(kind="EMPLOYEE"), world.stakeholder())
    secret = await world.idea(author, visible_to=["EMPLOYEE"])
    async with subscribe(gateway, IDEA_CHANGED, secret, outsider.token) as stream:
        result = await asyncio.wait_for(stream.__anext__(), TIMEOUT)
        assert codes(result) == ["NOT_FOUND"]
        assert not hub._listeners


@pytest.mark.asyncio
async def test_comment_added(make_gateway: GatewayFactory, world: World) -> None:
    hub = LiveHub()
    gateway = await make_gateway(hub=hub)
    author, subscriber = await world.stakeholders("Commenter", "Ada")
    idea, other = await world.idea(author), await world.idea(author)
    await world.known(idea, other)
    subject = subject_of(CommentAdded)
    async with subscribe(gateway, COMMENT_ADDED, idea, subscriber.token) as stream:
        next_item = asyncio.ensure_future(stream.__anext__())
        await reads(gateway, idea, 1)
        comment = await world.comment(idea, author, body="First!")
        hub.dispatch(subject, envelope(subject, idea_id=idea, comment_id=comment, author_id=author.id))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.errors is None
        assert result.data == {
            "commentAdded": {
                "id": encode_global_id("Comment", comment),
                "body": "First!",
                "author": {"displayName": "Commenter"},
            }
        }
        # a comment on another idea is not sent: the next one sent is the next one on this idea
        elsewhere = await world.comment(other, author)
        next_item = asyncio.ensure_future(stream.__anext__())
        hub.dispatch(subject, envelope(subject, idea_id=other, comment_id=elsewhere, author_id=author.id))
        later = await world.comment(idea, author, body="Second")
        hub.dispatch(subject, envelope(subject, idea_id=idea, comment_id=later, author_id=author.id))
        result = await asyncio.wait_for(next_item, TIMEOUT)
        assert result.data["commentAdded"]["id"] == encode_global_id("Comment", later)
        await close(stream, next_item)


def test_hub_routes_every_trigger() -> None:
    hub = LiveHub()
    a, b = uuid.uuid4(), uuid.uuid4()
    with hub.listen(("idea", a), coalesce=False) as on_a, hub.listen(("idea", b), coalesce=True) as on_b:
        hub.dispatch(f"live.idea.{a}", orjson.dumps({"idea_id": str(a)}))
        hub.dispatch(subject_of(VotesMoved), envelope(subject_of(VotesMoved), source_id=a, target_id=b))
        hub.dispatch(subject_of(IdeaMerged), envelope(subject_of(IdeaMerged), idea_id=a, target_id=b))
        hub.dispatch(subject_of(CommentHidden), envelope(subject_of(CommentHidden), idea_id=b))
        hub.dispatch(subject_of(VoteCast), b"not json")
        assert on_a.pending() == 3
        assert on_b.pending() == 1  # coalesced: one pending re-read is enough
    assert not hub._listeners
