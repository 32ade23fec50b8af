"""Subscription root (graphql-transport-ws only).

Each subscription listens on the process-wide LiveHub (one NATS subscription per process) and,
on a trigger, re-reads the object from its service WITH THE SUBSCRIBER'S token: it is emitted
only when the subscriber may see it (and, for ideas, only when it changed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry

from gateway.context import GatewayContext
from gateway.ids import require_id
from gateway.live import COMMENT, IDEA, LIVE
from gateway.schema.comment import Comment
from gateway.schema.common import GInfo, not_found
from gateway.schema.idea import Idea
from shared.contracts.ideas import IdeaPublic
from shared.logs import get_logger
from shared.problems import Problem

log = get_logger("gateway.subscriptions")


async def _fresh(ctx: GatewayContext) -> bool:
    """Fresh caches and a fresh look at the token before a re-read. An expired or revoked token
    raises UNAUTHENTICATED, which ends the subscription; False when the check cannot be made
    now (signing keys or the API-key exchange unavailable): skip this trigger."""
    ctx.reset_loaders()
    ctx.forget_principal()
    try:
        await ctx.principal()
    except Problem as problem:
        if problem.code != "UNAVAILABLE":
            raise
        log.warning("subscription_auth_unavailable")
        return False
    return True


async def _read_idea(
    ctx: GatewayContext, idea_id: uuid.UUID, *, tolerate_unavailable: bool = True
) -> IdeaPublic | None:
    """The idea as the subscriber sees it now; None when invisible/missing (or its service is
    down, when tolerated: the next trigger reads again)."""
    try:
        return await ctx.services.ideas.get(idea_id, await ctx.token())
    except Problem as problem:
        if problem.code == "NOT_FOUND":
            return None
        if problem.code == "UNAVAILABLE" and tolerate_unavailable:
            log.warning("subscription_read_failed", what="idea", id=str(idea_id))
            return None
        raise


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Emits the idea each time its votes, status, text or comment count change.")
    async def idea_changed(self, info: GInfo, id: strawberry.ID) -> AsyncGenerator[Idea, None]:
        ctx = info.context
        idea_id = require_id(id, "Idea")
        # Listen first, then read the baseline: no change is lost in between.
        with ctx.hub.listen((IDEA, idea_id), coalesce=True) as listener:
            last_seen = await _read_idea(ctx, idea_id, tolerate_unavailable=False)
            if last_seen is None:
                raise not_found("idea")
            last_sent: IdeaPublic | None = None
            while True:
                triggers = await listener.get_all()
                if not await _fresh(ctx):
                    continue
                data = await _read_idea(ctx, idea_id)
                if data is None:
                    continue
                changed = data != last_seen
                last_seen = data
                # An event may arrive before the change it causes is visible (the ideas service
                # updates score and counts asynchronously): emit only on a change. A LIVE trigger
                # says the idea did change: emit then even if the baseline, read just after
                # subscribing, already showed it (but never the same state twice in a row).
                if changed or (LIVE in triggers and data != last_sent):
                    last_sent = data
                    ctx.loaders.prime_ideas([data])
                    yield Idea.from_model(data)

    @strawberry.subscription(description="Emits each new comment on the idea that the subscriber may see.")
    async def comment_added(self, info: GInfo, idea_id: strawberry.ID) -> AsyncGenerator[Comment, None]:
        ctx = info.context
        target = require_id(idea_id, "Idea")
        with ctx.hub.listen((COMMENT, target), coalesce=False) as listener:
            if await _read_idea(ctx, target, tolerate_unavailable=False) is None:
                raise not_found("idea")
            while True:
                comment_id = await listener.get()
                if not isinstance(comment_id, uuid.UUID) or not await _fresh(ctx):
                    continue
                try:
                    comment = await ctx.loaders.comments.load(comment_id)
                except Problem as problem:
                    if problem.code != "UNAVAILABLE":
                        raise
                    log.warning("subscription_read_failed", what="comment", id=str(comment_id))
                    continue
                if comment is None:
                    continue
                yield Comment.from_model(comment)
