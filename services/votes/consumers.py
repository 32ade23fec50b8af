"""Events the votes service consumes: its projection of idea states (exists, status,
visibility, author, merge target), and the move of a merged idea's votes.

One durable consumer on the IDEAS stream, so the events of an idea arrive in publication order
except after a retry; the handlers check order themselves (service / domain)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.votes import domain
from services.votes.service import VoteService
from shared.consumer import PermanentError, Subscription
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatusChanged
from shared.events.envelope import Envelope

DURABLE_IDEAS = "votes-ideas"


async def on_idea_proposed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    assert isinstance(event, IdeaProposed)
    await VoteService(session).idea_proposed(event)


async def on_idea_status_changed(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    """Unknown idea or out-of-order change: raises, the message is nak'd and comes back later."""
    assert isinstance(event, IdeaStatusChanged)
    await VoteService(session).idea_status_changed(event)


async def on_idea_merged(session: AsyncSession, _: Envelope, event: BaseModel) -> None:
    """Unknown source or target: transient (nak). A merge chain that loops: permanent (term)."""
    assert isinstance(event, IdeaMerged)
    try:
        await VoteService(session).idea_merged(event)
    except domain.MergeCycle as exc:
        raise PermanentError(str(exc)) from exc


SUBSCRIPTIONS = [
    Subscription(
        DURABLE_IDEAS,
        {
            "ideas.v1.idea.proposed": on_idea_proposed,
            "ideas.v1.idea.status_changed": on_idea_status_changed,
            "ideas.v1.idea.merged": on_idea_merged,
        },
    ),
]
