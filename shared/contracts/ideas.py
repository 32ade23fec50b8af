"""What the ideas service answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from shared.events.catalogue import IdeaStatus, StakeholderKind


class IdeaSort(StrEnum):
    """The orders of GET /ideas (`sort`)."""

    TOP = "TOP"
    TRENDING = "TRENDING"
    NEWEST = "NEWEST"
    MOST_DISCUSSED = "MOST_DISCUSSED"


class SegmentTally(BaseModel):
    kind: StakeholderKind
    voters: int
    weight: int


class IdeaPublic(BaseModel):
    id: uuid.UUID
    title: str
    body: str
    tags: list[str] = []
    visible_to: list[StakeholderKind] = []
    status: IdeaStatus
    status_note: str | None
    author_id: uuid.UUID
    voters: int
    score: int
    tally: list[SegmentTally]
    comment_count: int
    merged_into_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    # Additions beyond the documented minimum.
    version: int
    recent_score: int


class IdeaRevisionPublic(BaseModel):
    version: int
    title: str
    body: str
    tags: list[str] = []
    editor_id: uuid.UUID
    edited_at: datetime
