"""Events the comment service consumes: the idea projection (who may see an idea, and whether
it still accepts comments). The IDEAS stream is VERSIONED: the consumer runner applies only the
newest event per idea (shared/events/catalogue.py); a change for an idea whose proposal has not
been handled yet is RetryLater."""

from __future__ import annotations

from services.comments.service import CommentService
from shared.consumer import Consumers
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatusChanged
from shared.uow import UnitOfWork

consumers = Consumers("comments")


@consumers.handler
async def on_idea_proposed(uow: UnitOfWork, event: IdeaProposed) -> None:
    await CommentService(uow).idea_proposed(event)


@consumers.handler
async def on_idea_status_changed(uow: UnitOfWork, event: IdeaStatusChanged) -> None:
    await CommentService(uow).idea_status_changed(event)


@consumers.handler
async def on_idea_merged(uow: UnitOfWork, event: IdeaMerged) -> None:
    await CommentService(uow).idea_merged(event)


SUBSCRIPTIONS = consumers.subscriptions
