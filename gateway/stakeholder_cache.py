"""Stakeholders as the gateway last read them, kept across requests.

Nearly every page of ideas shows its authors, and the same few thousand people write most of
them; asking the stakeholders service for them on every page was ~15% of the platform's CPU per
read. What is cached is the service's public view of a stakeholder (the same for every caller).

Fresh by events: the stakeholders service publishes `stakeholders.v1.stakeholder.updated` and
`.role_granted` (through its outbox) and every gateway forgets that stakeholder when it sees one;
this gateway's own updateProfile/grantRole answers replace the entry at once. A lost event (NATS
down) is bounded by the TTL. A read that was in flight while an entry was forgotten does not
store what it read (it may predate the change)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence

import orjson
from cachetools import TLRUCache
from nats.aio.msg import Msg
from prometheus_client import Counter

from shared.contracts.stakeholders import StakeholderPublic
from shared.ids import parse_uuid
from shared.logs import get_logger
from shared.messaging import STREAMS

SUBJECT = STREAMS["STAKEHOLDERS"][0]  # every stakeholder event
LOOKUPS = Counter("gateway_stakeholder_cache_total", "Stakeholder lookups by the gateway", ["outcome"])
HITS, MISSES = LOOKUPS.labels("hit"), LOOKUPS.labels("miss")

log = get_logger("gateway.stakeholder_cache")


class StakeholderCache:
    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self._entries: TLRUCache[uuid.UUID, StakeholderPublic] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, _data, now: now + ttl_seconds, timer=time.monotonic
        )
        # Bumped by every forget: a read started before it may hold the old version.
        self.generation = 0

    def get_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StakeholderPublic]:
        if self.ttl <= 0:
            return {}
        found = {key: data for key in ids if (data := self._entries.get(key)) is not None}
        HITS.inc(len(found))
        MISSES.inc(len(ids) - len(found))
        return found

    def put_many(self, items: Mapping[uuid.UUID, StakeholderPublic], read_at_generation: int | None = None) -> None:
        """Store what the service answered; skipped when something was forgotten since the read
        began (`read_at_generation`), as that read may be older than the change."""
        if self.ttl <= 0 or (read_at_generation is not None and read_at_generation != self.generation):
            return
        self._entries.update(items)

    def forget(self, stakeholder_id: uuid.UUID) -> None:
        self.generation += 1
        self._entries.pop(stakeholder_id, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def on_event(self, msg: Msg) -> None:
        """A stakeholder event from NATS: forget that stakeholder (unreadable: forget everyone)."""
        try:
            stakeholder_id = parse_uuid(orjson.loads(msg.data).get("subject_id"))
        except (orjson.JSONDecodeError, AttributeError):
            stakeholder_id = None
        if stakeholder_id is None:
            log.warning("stakeholder_event_unreadable", subject=msg.subject)
            self.clear()
            return
        self.forget(stakeholder_id)
