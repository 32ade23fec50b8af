"""What the stakeholders service answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.auth import Scope
from shared.events.catalogue import Role, StakeholderKind


class StakeholderPublic(BaseModel):
    id: uuid.UUID
    display_name: str
    kind: StakeholderKind
    organization: str | None = None
    expertise: list[str] = []
    role: Role
    created_at: datetime


class AuthResponse(BaseModel):
    token: str
    stakeholder: StakeholderPublic


class TokenResponse(BaseModel):
    token: str


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    label: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyWithSecret(ApiKeyPublic):
    secret: str


class RevokeResponse(BaseModel):
    revoked: bool
