"""Events the stakeholder service consumes: activity per tag, for ranking experts
(service.ExpertiseService)."""

from __future__ import annotations

from services.stakeholders.service import ExpertiseService
from shared.consumer import Consumers
from shared.events.catalogue import CommentAdded, IdeaProposed, IdeaRefined, VoteCast
from shared.uow import UnitOfWork

consumers = Consumers("stakeholders")


@consumers.handler
async def on_idea_proposed(uow: UnitOfWork, event: IdeaProposed) -> None:
    await ExpertiseService(uow).idea_proposed(event)


@consumers.handler
async def on_idea_refined(uow: UnitOfWork, event: IdeaRefined) -> None:
    await ExpertiseService(uow).idea_refined(event)


@consumers.handler
async def on_vote_cast(uow: UnitOfWork, event: VoteCast) -> None:
    await ExpertiseService(uow).vote_cast(event)


@consumers.handler
async def on_comment_added(uow: UnitOfWork, event: CommentAdded) -> None:
    await ExpertiseService(uow).comment_added(event)


SUBSCRIPTIONS = consumers.subscriptions
