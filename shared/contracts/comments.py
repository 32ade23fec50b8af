"""What the comments service answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.pagination import Page


class CommentPublic(BaseModel):
    id: uuid.UUID
    idea_id: uuid.UUID
    author_id: uuid.UUID
    parent_id: uuid.UUID | None
    # "" for a hidden comment unless the caller is a moderator.
    body: str
    official: bool
    hidden: bool
    created_at: datetime
    # Moderators (MODERATOR, PRODUCT_TEAM, ADMIN) only; null for everyone else.
    hidden_reason: str | None = None
    flag_count: int | None = None


class FlagResponse(BaseModel):
    flagged: bool


class ByIdeasResponse(BaseModel):
    # Keyed by idea id; ideas unknown or invisible to the caller are left out.
    pages: dict[str, Page[CommentPublic]]
