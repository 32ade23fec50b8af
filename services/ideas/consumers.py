"""Events the ideas service consumes: the vote tally (overall, per stakeholder kind, and per day
for trending) and the comment count of each idea.

Every handler runs in the consumer runner's transaction together with the inbox row, so a
redelivered event changes nothing. The deltas commute, so the order between vote events does
not matter. An idea that does not exist (yet) raises: the event is retried (nak)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ideas import domain
from services.ideas.repository import IdeaRepository
from services.ideas.service import changed_live
from shared.consumer import Subscription
from shared.events.catalogue import CommentAdded, VoteCast, VoteChanged, VotesMoved, VoteWithdrawn
from shared.events.envelope import Envelope


class IdeaNotYetKnown(Exception):
    """A vote or comment event for an idea this service has no row for: transient, retried."""


async def _apply(session: AsyncSession, deltas: list[domain.TallyDelta], at: datetime) -> None:
    """Apply one event's deltas: day buckets first, then the ideas in id order (the lock order
    the trending expiry uses too)."""
    repo = IdeaRepository(session)
    changes = domain.sum_deltas(deltas)
    day = domain.score_day(at)
    counts_recent = domain.in_window(day, datetime.now(UTC))
    for change in changes:
        if counts_recent and change.weight != 0:
            await repo.add_score_day(change.idea_id, day, change.weight)
    for change in changes:
        if not await repo.apply_tally(change, change.weight if counts_recent else 0):
            raise IdeaNotYetKnown(str(change.idea_id))
        changed_live(session, change.idea_id)


async def on_vote_cast(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, VoteCast)
    await _apply(session, domain.cast_deltas(event), event.cast_at)


async def on_vote_changed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, VoteChanged)
    await _apply(session, domain.changed_deltas(event), event.cast_at)


async def on_vote_withdrawn(session: AsyncSession, envelope: Envelope, event: BaseModel) -> None:
    assert isinstance(event, VoteWithdrawn)
    await _apply(session, domain.withdrawn_deltas(event), envelope.occurred_at)


async def on_votes_moved(session: AsyncSession, envelope: Envelope, event: BaseModel) -> None:
    assert isinstance(event, VotesMoved)
    await _apply(session, domain.moved_deltas(event), envelope.occurred_at)


async def on_comment_added(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, CommentAdded)
    if not await IdeaRepository(session).add_comment(event.idea_id):
        raise IdeaNotYetKnown(str(event.idea_id))
    changed_live(session, event.idea_id)


SUBSCRIPTIONS = [
    Subscription(
        "ideas-votes",
        {
            "votes.v1.vote.cast": on_vote_cast,
            "votes.v1.vote.changed": on_vote_changed,
            "votes.v1.vote.withdrawn": on_vote_withdrawn,
            "votes.v1.votes.moved": on_votes_moved,
        },
    ),
    Subscription("ideas-comments", {"comments.v1.comment.added": on_comment_added}),
]
