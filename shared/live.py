"""Live hints: small core-NATS messages published *after* a transaction commits, so the
gateway can push subscription updates (e.g. `live.idea.<id>` when an idea's numbers change).

They are hints, not events: never relied on for state (the outbox carries the events).
Code inside a transaction calls `publish_after_commit(session, subject, data)`; the boundary
that commits (request dependency, consumer runner) calls `flush_live(session, nc)` after it."""

from __future__ import annotations

from typing import Any

import orjson
from nats.aio.client import Client as NATS
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.logs import get_logger

_KEY = "live_hints"


def publish_after_commit(session: AsyncSession, subject: str, data: dict[str, Any]) -> None:
    hints: dict[str, dict[str, Any]] = session.info.setdefault(_KEY, {})
    hints[subject] = data  # one hint per subject per transaction is enough


def discard_live(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


async def flush_live(session: AsyncSession, nc: NATS | None) -> None:
    hints: dict[str, dict[str, Any]] = session.info.pop(_KEY, {})
    if not hints or nc is None or not nc.is_connected:
        return
    try:
        for subject, data in hints.items():
            await nc.publish(subject, orjson.dumps(data))
    except Exception as exc:
        get_logger("live").warning("live_hint_failed", error=repr(exc))
