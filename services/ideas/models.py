"""Ideas, their revisions and the trending day buckets (SQLModel family per aggregate:
Base / Create / Update / table; routes return only the public models, which are the contract
with the gateway: shared/contracts/ideas.py).

The vote tally and comment count are projections kept from events, stored as columns on the
idea so every ranking (overall and per stakeholder kind) is served from an index."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from pydantic import BaseModel
from sqlalchemy import Column, Date, DateTime, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from shared.contracts.ideas import IdeaPublic, IdeaRevisionPublic, IdeaSort, SegmentTally
from shared.events.catalogue import IdeaStatus, StakeholderKind

__all__ = ["IdeaPublic", "IdeaRevisionPublic", "IdeaSort", "SegmentTally"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdeaBase(SQLModel):
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))
    visible_to: list[StakeholderKind] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))


class IdeaCreate(SQLModel):
    """The proposal as sent. The limits here only bound the request's size; the contract's
    limits (after trimming and normalising) are checked in domain.py."""

    title: str = Field(max_length=2_000)
    body: str = Field(max_length=100_000)
    tags: list[str] | None = Field(default=None, max_length=100)
    visible_to: list[StakeholderKind] | None = Field(default=None, max_length=20)


class IdeaUpdate(SQLModel):
    title: str | None = Field(default=None, max_length=2_000)
    body: str | None = Field(default=None, max_length=100_000)
    tags: list[str] | None = Field(default=None, max_length=100)


class Idea(IdeaBase, table=True):
    __tablename__ = "idea"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    author_id: uuid.UUID
    status: IdeaStatus = Field(default=IdeaStatus.OPEN, sa_column=Column(String, nullable=False))
    status_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    merged_into_id: uuid.UUID | None = Field(default=None, foreign_key="idea.id")
    version: int = 1
    # The idea's version as an aggregate (one more with each event about it; the catalogue's ordering).
    event_version: int = 1
    # Projections from votes and comments events.
    voters: int = 0
    score: int = 0
    voters_customer: int = 0
    weight_customer: int = 0
    voters_supplier: int = 0
    weight_supplier: int = 0
    voters_partner: int = 0
    weight_partner: int = 0
    voters_employee: int = 0
    weight_employee: int = 0
    recent_score: int = 0
    comment_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # search_vector (a generated tsvector over title and body) exists only in the database:
    # it is never loaded or written by the ORM.


class IdeaRevisionBase(SQLModel):
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))


class IdeaRevision(IdeaRevisionBase, table=True):
    __tablename__ = "idea_revision"

    idea_id: uuid.UUID = Field(foreign_key="idea.id", primary_key=True)
    version: int = Field(primary_key=True)
    editor_id: uuid.UUID
    edited_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class IdeaScoreDay(SQLModel, table=True):
    """Trending: the score an idea gained (or lost) on one UTC day. `idea.recent_score` is
    always the sum of these rows; expired days are subtracted and deleted together."""

    __tablename__ = "idea_score_day"

    idea_id: uuid.UUID = Field(foreign_key="idea.id", primary_key=True)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    delta: int = 0


# --- request / response bodies -----------------------------------------------------------------
class StatusRequest(BaseModel):
    status: IdeaStatus
    note: str | None = Field(default=None, max_length=10_000)


class MergeRequest(BaseModel):
    target_id: uuid.UUID


class IdsRequest(BaseModel):
    ids: list[uuid.UUID] = Field(max_length=500)
