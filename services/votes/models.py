"""Votes and the idea-state projection (SQLModel family per aggregate: Base / Create / table;
routes return only the public models, the contract with the gateway: shared/contracts/votes.py).
A vote has no Update model: casting again with another weight is the update (PUT)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, StrictInt
from pydantic import Field as PydanticField
from sqlalchemy import Column, DateTime, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from services.votes.domain import DEFAULT_WEIGHT, MAX_MINE_IDS
from shared.contracts.votes import VotePublic, WithdrawResponse
from shared.events.catalogue import IdeaStatus, StakeholderKind

__all__ = ["VotePublic", "WithdrawResponse"]


class VoteBase(SQLModel):
    # Range (1..3) checked by domain.check_weight, so the refusal names the rule.
    weight: int = Field(sa_column=Column(SmallInteger, nullable=False))


class VoteCreate(SQLModel):
    """PUT /ideas/{idea_id}/vote body. Strict: "2", 2.0 or true are not weights."""

    weight: StrictInt = DEFAULT_WEIGHT


class Vote(VoteBase, table=True):
    """One vote per (idea, stakeholder). `previous_weight` is the weight before the last change
    (NULL for a vote never changed): it is how one upsert statement reports the old weight."""

    __tablename__ = "vote"

    idea_id: uuid.UUID = Field(primary_key=True)
    voter_id: uuid.UUID = Field(primary_key=True)
    previous_weight: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    voter_kind: StakeholderKind = Field(sa_column=Column(String, nullable=False))
    cast_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class IdeaState(SQLModel, table=True):
    """Projection of the ideas service's ideas: enough to refuse votes on unknown, invisible,
    closed or merged ideas. Built from ideas.v1.idea.proposed / .status_changed / .merged."""

    __tablename__ = "idea_state"

    idea_id: uuid.UUID = Field(primary_key=True)
    status: IdeaStatus = Field(sa_column=Column(String, nullable=False))
    visible_to: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))
    author_id: uuid.UUID
    merged_into_id: uuid.UUID | None = None
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


# --- request / response bodies -----------------------------------------------------------------
class MineRequest(BaseModel):
    idea_ids: list[uuid.UUID] = PydanticField(max_length=MAX_MINE_IDS)
