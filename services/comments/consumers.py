"""Events the comment service consumes: the idea projection (who may see an idea, and whether
it still accepts comments).

Proposed, status_changed and merged all come from the IDEAS stream through one durable
consumer, so they arrive in order; a change for an idea whose proposal has not been handled
yet (its first delivery failed and is being retried) is retried too (nak) until it has."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.comments import domain
from services.comments.repository import CommentRepository
from shared.consumer import Subscription
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatus, IdeaStatusChanged
from shared.events.envelope import Envelope


class IdeaNotYetKnown(Exception):
    """A change arrived before its idea's proposal: retried later (nak)."""


async def on_idea_proposed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaProposed)
    await CommentRepository(session).add_idea_if_absent(
        event.idea_id, event.author_id, [str(k) for k in event.visible_to], event.status
    )


async def _set_status(session: AsyncSession, idea_id: uuid.UUID, reported: IdeaStatus) -> None:
    repo = CommentRepository(session)
    idea = await repo.idea(idea_id, for_update=True)
    if idea is None:
        raise IdeaNotYetKnown(str(idea_id))
    status = domain.next_status(idea.status, reported)
    if status != idea.status:
        idea.status = status
        await repo.save_idea(idea)


async def on_idea_status_changed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaStatusChanged)
    await _set_status(session, event.idea_id, event.to_status)


async def on_idea_merged(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaMerged)
    await _set_status(session, event.idea_id, IdeaStatus.MERGED)


SUBSCRIPTIONS = [
    Subscription(
        "comments-ideas",
        {
            "ideas.v1.idea.proposed": on_idea_proposed,
            "ideas.v1.idea.status_changed": on_idea_status_changed,
            "ideas.v1.idea.merged": on_idea_merged,
        },
    ),
]
