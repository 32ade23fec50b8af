"""Idea, its revisions and its tally."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

import strawberry

from gateway.context import ready_or_later
from gateway.ids import encode_global_id
from gateway.schema.comment import Comment
from gateway.schema.common import GInfo, Node, check_first, not_found
from gateway.schema.connections import Connection, check_after, connection
from gateway.schema.enums import IdeaStatus, StakeholderKind
from gateway.schema.stakeholder import Stakeholder, load_stakeholder, stakeholder_or_missing
from gateway.schema.vote import Vote, vote_or_none
from shared.contracts.ideas import IdeaPublic, IdeaRevisionPublic


@strawberry.type(description="Votes on one idea from one stakeholder kind. weight is the sum of those votes' weights.")
class SegmentTally:
    kind: StakeholderKind
    voters: int
    weight: int


@strawberry.type
class IdeaRevision:
    version: int
    title: str
    body: str
    tags: list[str]
    edited_at: datetime
    editor_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: IdeaRevisionPublic) -> IdeaRevision:
        return cls(
            version=m.version,
            title=m.title,
            body=m.body,
            tags=list(m.tags),
            edited_at=m.edited_at,
            editor_id=m.editor_id,
        )

    @strawberry.field
    async def editor(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.editor_id)


@strawberry.type
class Idea(Node):
    id: strawberry.ID
    title: str
    body: str
    tags: list[str]
    status: IdeaStatus
    status_note: str | None = strawberry.field(description="The product team's note from the last status change.")
    visible_to: list[StakeholderKind] = strawberry.field(
        description=(
            "Empty: every stakeholder, and anonymous readers. Otherwise only these kinds (plus the author, "
            "PRODUCT_TEAM and ADMIN) can see the idea or anything on it."
        )
    )
    voters: int = strawberry.field(description="Number of stakeholders with a vote on this idea.")
    score: int = strawberry.field(description="Sum of vote weights: the ranking score.")
    tally: list[SegmentTally] = strawberry.field(
        description="One entry per stakeholder kind that has votes, in enum order."
    )
    comment_count: int
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    author_id: strawberry.Private[uuid.UUID]
    merged_into_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: IdeaPublic) -> Idea:
        return cls(
            id=strawberry.ID(encode_global_id("Idea", m.id)),
            pk=m.id,
            title=m.title,
            body=m.body,
            tags=list(m.tags),
            status=m.status,
            status_note=m.status_note,
            visible_to=list(m.visible_to),
            voters=m.voters,
            score=m.score,
            tally=[SegmentTally(kind=t.kind, voters=t.voters, weight=t.weight) for t in m.tally],
            comment_count=m.comment_count,
            created_at=m.created_at,
            updated_at=m.updated_at,
            author_id=m.author_id,
            merged_into_id=m.merged_into_id,
        )

    # author and my_vote are sync resolvers that may return an awaitable: a page of ideas has
    # prefetched both, and then they answer at once (see context.ready_or_later).
    @strawberry.field
    def author(self, info: GInfo) -> Stakeholder:
        return ready_or_later(info.context.loaders.stakeholders, self.author_id, stakeholder_or_missing)  # type: ignore[return-value]

    @strawberry.field(description="The caller's own vote, null when anonymous or not voted.")
    def my_vote(self, info: GInfo) -> Vote | None:
        # The loader answers None for every idea when the caller is anonymous.
        return ready_or_later(info.context.loaders.my_votes, self.pk, vote_or_none)  # type: ignore[return-value]

    @strawberry.field(description="Every version, oldest first; version 1 is the proposal.")
    async def revisions(self, info: GInfo) -> list[IdeaRevision]:
        found = await info.context.loaders.revisions.load(self.pk)
        return sorted((IdeaRevision.from_model(r) for r in found), key=lambda r: r.version)

    @strawberry.field
    async def merged_into(self, info: GInfo) -> Idea | None:
        if self.merged_into_id is None:
            return None
        return await load_idea(info, self.merged_into_id)

    @strawberry.field
    async def comments(
        self, info: GInfo, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> Connection[Comment]:
        ctx = info.context
        count = check_first(first, 20, ctx.settings.max_first)
        after = check_after(after)
        if after is None:
            # The common case (first page of every idea on a page of ideas): one batched call.
            page = await ctx.loaders.comment_pages.load((self.pk, count))
        else:
            page = await ctx.services.comments.list_comments(self.pk, count, after, await ctx.token())
            ctx.loaders.prime_comments(page.items)
        return connection(page, Comment.from_model)


async def load_idea(info: GInfo, idea_id: uuid.UUID) -> Idea | None:
    found = await info.context.loaders.ideas.load(idea_id)
    return None if found is None else Idea.from_model(found)


async def require_idea(info: GInfo, idea_id: uuid.UUID) -> Idea:
    """The idea a vote or comment is on; invisible reads as missing (NOT_FOUND)."""
    idea = await load_idea(info, idea_id)
    if idea is None:
        raise not_found("idea")
    return idea


async def prefetch_idea_relations(info: GInfo, ideas: Sequence[Idea], fields: set[str]) -> None:
    """Load what a page's ideas ask for (author, myVote) before the page is returned: one batch
    each, as the DataLoaders would have made, but with every value in hand when graphql-core
    completes the list, so each field answers without a task. A failed batch stays in its
    loader and surfaces at the fields, as before."""
    loaders = info.context.loaders
    loads: list[Awaitable[Any]] = []
    if "author" in fields:
        loads.append(loaders.stakeholders.load_many([idea.author_id for idea in ideas]))
    if "myVote" in fields:
        loads.append(loaders.my_votes.load_many([idea.pk for idea in ideas]))
    if loads:
        await asyncio.gather(*loads, return_exceptions=True)
