"""Events the ideas service consumes: the vote tally (overall, per stakeholder kind, and per day
for trending) and the comment count of each idea.

Every handler runs in the consumer runner's transaction together with the inbox row, so a
redelivered event changes nothing. VOTES and COMMENTS are COMMUTATIVE streams: the deltas add up
to the same tally in any order. An idea that does not exist (yet) is RetryLater."""

from __future__ import annotations

from services.ideas import domain
from services.ideas.service import IdeaService
from shared.consumer import Consumers
from shared.events.catalogue import CommentAdded, VoteCast, VoteChanged, VotesMoved, VoteWithdrawn
from shared.uow import UnitOfWork

consumers = Consumers("ideas")


@consumers.handler
async def on_vote_cast(uow: UnitOfWork, event: VoteCast) -> None:
    await IdeaService(uow).apply_tally(domain.cast_deltas(event), event.cast_at)


@consumers.handler
async def on_vote_changed(uow: UnitOfWork, event: VoteChanged) -> None:
    await IdeaService(uow).apply_tally(domain.changed_deltas(event), event.cast_at)


@consumers.handler
async def on_vote_withdrawn(uow: UnitOfWork, event: VoteWithdrawn) -> None:
    await IdeaService(uow).apply_tally(domain.withdrawn_deltas(event), uow.event_time())


@consumers.handler
async def on_votes_moved(uow: UnitOfWork, event: VotesMoved) -> None:
    await IdeaService(uow).apply_tally(domain.moved_deltas(event), uow.event_time())


@consumers.handler
async def on_comment_added(uow: UnitOfWork, event: CommentAdded) -> None:
    await IdeaService(uow).comment_added(event)


SUBSCRIPTIONS = consumers.subscriptions
