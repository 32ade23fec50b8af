"""Stakeholder, and what signing in answers."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from gateway.ids import encode_global_id
from gateway.schema.common import GInfo, Node, not_found
from gateway.schema.enums import Role, StakeholderKind
from shared.contracts.stakeholders import AuthResponse, StakeholderPublic


@strawberry.type
class Stakeholder(Node):
    id: strawberry.ID
    display_name: str
    kind: StakeholderKind
    organization: str | None
    role: Role
    expertise: list[str]
    created_at: datetime
    pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_model(cls, m: StakeholderPublic) -> Stakeholder:
        return cls(
            id=strawberry.ID(encode_global_id("Stakeholder", m.id)),
            pk=m.id,
            display_name=m.display_name,
            kind=m.kind,
            organization=m.organization,
            role=m.role,
            expertise=list(m.expertise),
            created_at=m.created_at,
        )


def stakeholder_or_missing(m: StakeholderPublic | None) -> Stakeholder:
    if m is None:
        raise not_found("stakeholder")
    return Stakeholder.from_model(m)


async def load_stakeholder(info: GInfo, stakeholder_id: uuid.UUID) -> Stakeholder:
    return stakeholder_or_missing(await info.context.loaders.stakeholders.load(stakeholder_id))


@strawberry.type
class AuthPayload:
    token: str
    stakeholder: Stakeholder

    @classmethod
    def from_model(cls, m: AuthResponse) -> AuthPayload:
        return cls(token=m.token, stakeholder=Stakeholder.from_model(m.stakeholder))
