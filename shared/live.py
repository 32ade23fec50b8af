"""Live hints: small core-NATS messages published *after* a transaction commits
(`UnitOfWork.live`), so the gateway can push subscription updates. They are hints, not events:
never relied on for state (the outbox carries the events). Their subjects are named here."""

from __future__ import annotations

import uuid

# `live.idea.<idea_id>` ({"idea_id": ...}): the ideas service committed a change to the idea's
# numbers (score, voters, tally, comment count) or text.
LIVE_IDEA_PREFIX = "live.idea."
LIVE_IDEA_SUBJECTS = LIVE_IDEA_PREFIX + "*"


def idea_live_subject(idea_id: uuid.UUID) -> str:
    return f"{LIVE_IDEA_PREFIX}{idea_id}"
