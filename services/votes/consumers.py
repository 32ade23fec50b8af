"""Events the votes service consumes: its projection of idea states (exists, status,
visibility, author, merge target), and the move of a merged idea's votes. The IDEAS stream is
VERSIONED: the consumer runner applies only the newest event per idea (shared/events/catalogue.py);
an unknown idea or merge target is RetryLater, a merge chain that loops a PermanentError."""

from __future__ import annotations

from services.votes.service import VoteService
from shared.consumer import Consumers
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatusChanged
from shared.uow import UnitOfWork

consumers = Consumers("votes")


@consumers.handler
async def on_idea_proposed(uow: UnitOfWork, event: IdeaProposed) -> None:
    await VoteService(uow).idea_proposed(event)


@consumers.handler
async def on_idea_status_changed(uow: UnitOfWork, event: IdeaStatusChanged) -> None:
    await VoteService(uow).idea_status_changed(event)


@consumers.handler
async def on_idea_merged(uow: UnitOfWork, event: IdeaMerged) -> None:
    await VoteService(uow).idea_merged(event)


SUBSCRIPTIONS = consumers.subscriptions
