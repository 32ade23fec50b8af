"""Live updates for subscriptions: ONE set of NATS core subscriptions per gateway process,
fanned out to the local subscribers through asyncio queues.

Triggers (payloads are the project's JSON envelopes, see shared/events):
- the live hints of shared/live.py ({"idea_id": ...}): published by the ideas service after each
  committed change of its idea projection (score, voters, tally, comment count): the main
  ideaChanged trigger.
- every event of the IDEAS, VOTES and COMMENTS streams, for each idea it changes (the catalogue's
  `EventSpec.ideas`): ideaChanged triggers too; the subscription re-reads the idea and emits only
  when it changed, so early triggers cost a read.
- CommentAdded (idea_id, comment_id): commentAdded.

A trigger carries no data to the client: the subscription re-reads the object with the
subscriber's own token, so visibility is enforced by the services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter, Gauge

from shared.events.catalogue import CATALOGUE, CommentAdded, subject_of
from shared.ids import parse_uuid
from shared.live import LIVE_IDEA_PREFIX, LIVE_IDEA_SUBJECTS
from shared.logs import get_logger
from shared.messaging import STREAMS

IDEA = "idea"
COMMENT = "comment"
Topic = tuple[str, uuid.UUID]
# What an idea listener is told: LIVE (the ideas service committed a change to the idea's
# projection: something changed for sure) or EVENT (an event about the idea: maybe changed).
LIVE = "live"
EVENT = "event"
Item = str | uuid.UUID

SUBJECTS = (LIVE_IDEA_SUBJECTS, *(subject for stream in ("IDEAS", "VOTES", "COMMENTS") for subject in STREAMS[stream]))
COMMENT_ADDED = subject_of(CommentAdded)

ACTIVE_LISTENERS = Gauge("gateway_live_listeners", "Local subscribers waiting for live updates")
DROPPED = Counter("gateway_live_dropped_total", "Live updates dropped because a subscriber was too slow")
RECEIVED = Counter("gateway_live_messages_total", "NATS messages received for live updates", ["kind"])

log = get_logger("gateway.live")


class Listener:
    """One subscriber's mailbox.

    Queue mode (commentAdded): every item (a comment id) in order, bounded; a subscriber that
    falls behind loses items (counted and logged). Coalescing mode (ideaChanged): the items
    offered since the last `get_all` collapse into one set, so a busy idea costs one re-read
    per round, not one per event."""

    def __init__(self, topic: Topic, maxsize: int, coalesce: bool) -> None:
        self.topic = topic
        self.coalesce = coalesce
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=maxsize)
        self._pending: set[Item] = set()
        self._wakeup = asyncio.Event()

    def offer(self, item: Item) -> None:
        if self.coalesce:
            self._pending.add(item)
            self._wakeup.set()
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            DROPPED.inc()
            log.warning("live_update_dropped", topic=self.topic[0], id=str(self.topic[1]))

    def pending(self) -> int:
        return len(self._pending) if self.coalesce else self._queue.qsize()

    async def get(self) -> Item:
        """Queue mode: the next item."""
        return await self._queue.get()

    async def get_all(self) -> frozenset[Item]:
        """Coalescing mode: every distinct item offered since the last call (waits for one)."""
        await self._wakeup.wait()
        self._wakeup.clear()
        items, self._pending = frozenset(self._pending), set()
        return items


class LiveHub:
    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._listeners: dict[Topic, set[Listener]] = {}
        self._subscriptions: list[Subscription] = []
        self._nc: NATS | None = None

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self, nc: NATS) -> None:
        self._nc = nc
        for subject in SUBJECTS:
            self._subscriptions.append(await nc.subscribe(subject, cb=self._on_message))
        log.info("live_updates_subscribed", subjects=list(SUBJECTS))

    async def close(self) -> None:
        """Unsubscribe and close this process's NATS connection."""
        for sub in self._subscriptions:
            with suppress(Exception):  # closing anyway
                await sub.unsubscribe()
        self._subscriptions.clear()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.drain()

    @contextmanager
    def listen(self, topic: Topic, *, coalesce: bool) -> Iterator[Listener]:
        listener = Listener(topic, self.queue_size, coalesce)
        self._listeners.setdefault(topic, set()).add(listener)
        ACTIVE_LISTENERS.inc()
        try:
            yield listener
        finally:
            ACTIVE_LISTENERS.dec()
            listeners = self._listeners.get(topic)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[topic]

    async def _on_message(self, msg: Msg) -> None:
        self.dispatch(msg.subject, msg.data)

    def dispatch(self, subject: str, data: bytes) -> None:
        """Route one message to the local listeners (never raises)."""
        RECEIVED.labels(subject.split(".", 1)[0]).inc()
        if not self._listeners:  # nobody subscribed here: every vote's messages cost nothing
            return
        try:
            payload = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            log.warning("live_message_unreadable", subject=subject)
            return
        if not isinstance(payload, dict):
            return
        body: dict[str, Any] = payload.get("data") if isinstance(payload.get("data"), dict) else payload  # type: ignore[assignment]
        if subject.startswith(LIVE_IDEA_PREFIX):
            self._notify_idea(body.get("idea_id") or subject.removeprefix(LIVE_IDEA_PREFIX), LIVE)
            return
        spec = CATALOGUE.get(subject)
        if spec is None:
            return
        for key in spec.ideas:
            self._notify_idea(body.get(key))
        if subject == COMMENT_ADDED:
            idea_id, comment_id = parse_uuid(body.get("idea_id")), parse_uuid(body.get("comment_id"))
            if idea_id is not None and comment_id is not None:
                self._offer((COMMENT, idea_id), comment_id)

    def _notify_idea(self, value: object, kind: str = EVENT) -> None:
        idea_id = parse_uuid(value)
        if idea_id is not None:
            self._offer((IDEA, idea_id), kind)

    def _offer(self, topic: Topic, item: Item) -> None:
        for listener in tuple(self._listeners.get(topic, ())):
            listener.offer(item)
