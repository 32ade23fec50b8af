"""Events the stakeholder service consumes: activity per tag, for ranking experts.

Weights: proposing an idea 3, commenting 2, voting 1, credited to the idea's tags."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.stakeholders.repository import StakeholderRepository
from shared.consumer import Subscription
from shared.events.catalogue import CommentAdded, IdeaProposed, IdeaRefined, VoteCast
from shared.events.envelope import Envelope

IDEA_WEIGHT, COMMENT_WEIGHT, VOTE_WEIGHT = 3, 2, 1


class IdeaNotYetKnown(Exception):
    """A vote or comment arrived before its idea's proposal: retried later (nak)."""


async def on_idea_proposed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaProposed)
    repo = StakeholderRepository(session)
    await repo.set_idea_tags(event.idea_id, event.tags)
    await repo.credit(event.author_id, event.tags, IDEA_WEIGHT)


async def on_idea_refined(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaRefined)
    await StakeholderRepository(session).set_idea_tags(event.idea_id, event.tags)


async def _credit_on_idea(session: AsyncSession, idea_id: UUID, stakeholder_id: UUID, weight: int) -> None:
    if not await StakeholderRepository(session).credit_on_idea(stakeholder_id, idea_id, weight):
        raise IdeaNotYetKnown(str(idea_id))


async def on_vote_cast(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, VoteCast)
    await _credit_on_idea(session, event.idea_id, event.voter_id, VOTE_WEIGHT)


async def on_comment_added(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, CommentAdded)
    await _credit_on_idea(session, event.idea_id, event.author_id, COMMENT_WEIGHT)


SUBSCRIPTIONS = [
    Subscription(
        "stakeholders-ideas",
        {"ideas.v1.idea.proposed": on_idea_proposed, "ideas.v1.idea.refined": on_idea_refined},
    ),
    Subscription("stakeholders-votes", {"votes.v1.vote.cast": on_vote_cast}),
    Subscription("stakeholders-comments", {"comments.v1.comment.added": on_comment_added}),
]
