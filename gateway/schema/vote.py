"""Vote."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway.schema.common import GInfo
from gateway.schema.stakeholder import Stakeholder, load_stakeholder
from shared.contracts.votes import VotePublic

if TYPE_CHECKING:
    from gateway.schema.idea import Idea


@strawberry.type(description="weight: 1 nice to have, 2 important, 3 must have.")
class Vote:
    weight: int
    cast_at: datetime
    idea_id: strawberry.Private[uuid.UUID]
    voter_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: VotePublic) -> Vote:
        return cls(weight=m.weight, cast_at=m.cast_at, idea_id=m.idea_id, voter_id=m.voter_id)

    @strawberry.field
    async def idea(self, info: GInfo) -> Annotated[Idea, strawberry.lazy("gateway.schema.idea")]:
        from gateway.schema.idea import require_idea  # idea.py builds on this module

        return await require_idea(info, self.idea_id)

    @strawberry.field
    async def voter(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.voter_id)


def vote_or_none(m: VotePublic | None) -> Vote | None:
    return None if m is None else Vote.from_model(m)
