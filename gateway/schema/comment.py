"""Comment."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway.ids import encode_global_id
from gateway.schema.common import GInfo, Node
from gateway.schema.stakeholder import Stakeholder, load_stakeholder
from shared.contracts.comments import CommentPublic

if TYPE_CHECKING:
    from gateway.schema.idea import Idea


@strawberry.type
class Comment(Node):
    id: strawberry.ID
    body: str
    official: bool = strawberry.field(description="True when written by PRODUCT_TEAM or ADMIN: the official answer.")
    hidden: bool = strawberry.field(
        description=(
            "Hidden comments keep their place in the thread; their body reads as empty for everyone but moderators."
        )
    )
    created_at: datetime
    pk: strawberry.Private[uuid.UUID]
    idea_id: strawberry.Private[uuid.UUID]
    author_id: strawberry.Private[uuid.UUID]
    parent_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_model(cls, m: CommentPublic) -> Comment:
        return cls(
            id=strawberry.ID(encode_global_id("Comment", m.id)),
            pk=m.id,
            body=m.body,
            official=m.official,
            hidden=m.hidden,
            created_at=m.created_at,
            idea_id=m.idea_id,
            author_id=m.author_id,
            parent_id=m.parent_id,
        )

    @strawberry.field
    async def idea(self, info: GInfo) -> Annotated[Idea, strawberry.lazy("gateway.schema.idea")]:
        from gateway.schema.idea import require_idea  # idea.py builds on this module

        return await require_idea(info, self.idea_id)

    @strawberry.field
    async def author(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.author_id)

    @strawberry.field
    async def parent(self, info: GInfo) -> Comment | None:
        if self.parent_id is None:
            return None
        found = await info.context.loaders.comments.load(self.parent_id)
        return None if found is None else Comment.from_model(found)
