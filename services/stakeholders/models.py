"""Stakeholder accounts, signing keys and integrator API keys (SQLModel family per aggregate:
Base / Create / Update / table; routes return only the public models, which are the contract
with the gateway: shared/contracts/stakeholders.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Column, DateTime, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from shared.contracts.stakeholders import (
    ApiKeyPublic,
    ApiKeyWithSecret,
    AuthResponse,
    RevokeResponse,
    StakeholderPublic,
    TokenResponse,
)
from shared.events.catalogue import Role, StakeholderKind

__all__ = ["ApiKeyPublic", "ApiKeyWithSecret", "AuthResponse", "RevokeResponse", "StakeholderPublic", "TokenResponse"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class StakeholderBase(SQLModel):
    display_name: str = Field(min_length=1, max_length=80)
    kind: StakeholderKind = Field(sa_column=Column(String, nullable=False))
    organization: str | None = Field(default=None, max_length=120)
    expertise: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))


class StakeholderCreate(StakeholderBase):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class StakeholderUpdate(SQLModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=80)
    organization: str | None = Field(default=None, max_length=120)
    expertise: list[str] | None = None


class Stakeholder(StakeholderBase, table=True):
    __tablename__ = "stakeholder"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str  # stored lower-cased; unique
    password_hash: str
    role: Role = Field(default=Role.MEMBER, sa_column=Column(String, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    # Its version as an aggregate (one more with each event about it; the catalogue's ordering).
    event_version: int = 1


class LoginFailure(SQLModel, table=True):
    """Failed logins per e-mail, for throttling (in the database so replicas agree)."""

    __tablename__ = "login_failure"

    email: str = Field(primary_key=True)
    failures: int = 0
    first_failed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class SigningKey(SQLModel, table=True):
    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True)
    private_pem: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiKeyBase(SQLModel):
    label: str = Field(min_length=1, max_length=80)
    scope: str = Field(default="read", max_length=20)


class ApiKeyCreate(ApiKeyBase):
    pass


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="stakeholder.id", index=True)
    secret_hash: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class IdeaActivity(SQLModel, table=True):
    """Projection for experts: activity (proposing, commenting, voting) per stakeholder per idea,
    counted under the idea's current tags (the same whatever order the events arrive in)."""

    __tablename__ = "idea_activity"

    stakeholder_id: uuid.UUID = Field(primary_key=True)
    idea_id: uuid.UUID = Field(primary_key=True)
    activity: int = 0


class TagActivity(SQLModel, table=True):
    """Activity credited per tag before revision 0003 (read, never written any more)."""

    __tablename__ = "tag_activity"

    stakeholder_id: uuid.UUID = Field(primary_key=True)
    tag: str = Field(primary_key=True)
    activity: int = 0


class IdeaTags(SQLModel, table=True):
    """Projection: the tags of each idea, so votes and comments can be credited to tags."""

    __tablename__ = "idea_tags"

    idea_id: uuid.UUID = Field(primary_key=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String), nullable=False))


# --- request / response bodies -----------------------------------------------------------------
class LoginRequest(BaseModel):
    email: str
    password: str


class RoleRequest(BaseModel):
    role: Role


class IdsRequest(BaseModel):
    ids: list[uuid.UUID] = Field(max_length=500)


class ApiKeyTokenRequest(BaseModel):
    key: str
