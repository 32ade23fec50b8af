"""Comments, flags and the idea-visibility projection (SQLModel family per aggregate:
Base / Create / table; routes return only the public models, the contract with the gateway:
shared/contracts/comments.py).

Comments are never edited, so there is no CommentUpdate: the only changes are hiding
(HideRequest) and flagging (FlagRequest)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, StrictInt
from sqlalchemy import Column, DateTime, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from shared.contracts.comments import ByIdeasResponse, CommentPublic, FlagResponse
from shared.events.catalogue import IdeaStatus

__all__ = ["ByIdeasResponse", "CommentPublic", "FlagResponse"]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- projection: what this service knows about ideas ---------------------------------------------
class IdeaVisibility(SQLModel, table=True):
    """Built from ideas.v1.idea.* events: who may see an idea (and so its comments) and
    whether it still accepts comments."""

    __tablename__ = "idea_visibility"

    idea_id: uuid.UUID = Field(primary_key=True)
    visible_to: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))
    author_id: uuid.UUID
    status: IdeaStatus = Field(sa_column=Column(String, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


# --- comments --------------------------------------------------------------------------------------
class CommentBase(SQLModel):
    # Inert text, stored exactly as given (domain.check_body enforces the limits).
    body: str = Field(sa_column=Column(Text, nullable=False))
    parent_id: uuid.UUID | None = None


class CommentCreate(CommentBase):
    pass


class Comment(CommentBase, table=True):
    __tablename__ = "comment"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    idea_id: uuid.UUID = Field(foreign_key="idea_visibility.idea_id")
    author_id: uuid.UUID
    official: bool = False
    hidden: bool = False
    hidden_reason: str | None = None
    hidden_by: uuid.UUID | None = None
    hidden_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    flag_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class CommentFlag(SQLModel, table=True):
    """One flag per member per comment (the primary key enforces it)."""

    __tablename__ = "comment_flag"

    comment_id: uuid.UUID = Field(foreign_key="comment.id", primary_key=True)
    flagger_id: uuid.UUID = Field(primary_key=True)
    reason: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


# --- request / response bodies -----------------------------------------------------------------
class ReasonRequest(BaseModel):
    reason: str


class HideRequest(ReasonRequest):
    pass


class FlagRequest(ReasonRequest):
    pass


class IdsRequest(BaseModel):
    ids: list[uuid.UUID] = Field(max_length=500)


class ByIdeasRequest(BaseModel):
    idea_ids: list[uuid.UUID] = Field(max_length=100)
    first: StrictInt = 20
