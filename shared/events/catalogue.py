"""The event catalogue, written down once: subject, payload model, publisher, consumers.

Subjects are `<context>.v1.<aggregate>.<event>`; one JetStream stream per context. Every
payload is validated by its model when it is written (outbox) and when it is read (consumer).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class StakeholderKind(StrEnum):
    CUSTOMER = "CUSTOMER"
    SUPPLIER = "SUPPLIER"
    PARTNER = "PARTNER"
    EMPLOYEE = "EMPLOYEE"


class Role(StrEnum):
    MEMBER = "MEMBER"
    MODERATOR = "MODERATOR"
    PRODUCT_TEAM = "PRODUCT_TEAM"
    ADMIN = "ADMIN"


class IdeaStatus(StrEnum):
    OPEN = "OPEN"
    UNDER_REVIEW = "UNDER_REVIEW"
    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    SHIPPED = "SHIPPED"
    DECLINED = "DECLINED"
    MERGED = "MERGED"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- stakeholders ---------------------------------------------------------------------------
class StakeholderRegistered(Payload):
    stakeholder_id: uuid.UUID
    display_name: str
    kind: StakeholderKind
    role: Role
    organization: str | None = None
    expertise: list[str] = []


class StakeholderUpdated(Payload):
    stakeholder_id: uuid.UUID
    display_name: str
    kind: StakeholderKind
    organization: str | None = None
    expertise: list[str] = []


class RoleGranted(Payload):
    stakeholder_id: uuid.UUID
    role: Role
    previous_role: Role
    granted_by: uuid.UUID | None  # None: the bootstrap ADMIN from settings


# --- ideas ----------------------------------------------------------------------------------
class IdeaProposed(Payload):
    idea_id: uuid.UUID
    author_id: uuid.UUID
    title: str
    tags: list[str]
    visible_to: list[StakeholderKind]
    status: IdeaStatus
    created_at: datetime


class IdeaRefined(Payload):
    idea_id: uuid.UUID
    version: int
    editor_id: uuid.UUID
    title: str
    tags: list[str]


class IdeaStatusChanged(Payload):
    idea_id: uuid.UUID
    from_status: IdeaStatus
    to_status: IdeaStatus
    note: str | None
    changed_by: uuid.UUID


class IdeaMerged(Payload):
    idea_id: uuid.UUID  # the source, now MERGED
    target_id: uuid.UUID
    merged_by: uuid.UUID


# --- votes ----------------------------------------------------------------------------------
class VoteCast(Payload):
    idea_id: uuid.UUID
    voter_id: uuid.UUID
    voter_kind: StakeholderKind
    weight: int
    cast_at: datetime


class VoteChanged(Payload):
    idea_id: uuid.UUID
    voter_id: uuid.UUID
    voter_kind: StakeholderKind
    old_weight: int
    new_weight: int
    cast_at: datetime


class VoteWithdrawn(Payload):
    idea_id: uuid.UUID
    voter_id: uuid.UUID
    voter_kind: StakeholderKind
    weight: int


class VoteMove(Payload):
    voter_id: uuid.UUID
    voter_kind: StakeholderKind
    source_weight: int
    # The voter's weight on the target before and after the move (None before: no vote there).
    target_old_weight: int | None
    target_new_weight: int


class VotesMoved(Payload):
    source_id: uuid.UUID
    target_id: uuid.UUID
    moves: list[VoteMove]


# --- comments -------------------------------------------------------------------------------
class CommentAdded(Payload):
    comment_id: uuid.UUID
    idea_id: uuid.UUID
    author_id: uuid.UUID
    parent_id: uuid.UUID | None
    official: bool
    created_at: datetime


class CommentHidden(Payload):
    comment_id: uuid.UUID
    idea_id: uuid.UUID
    reason: str
    hidden_by: uuid.UUID


@dataclass(frozen=True)
class EventSpec:
    subject: str
    model: type[Payload]
    publisher: str
    consumers: tuple[str, ...]
    version: int = 1


CATALOGUE: dict[str, EventSpec] = {
    spec.subject: spec
    for spec in [
        # consumers: the services whose durable consumers handle the event (the gateway also
        # listens to every subject for live subscriptions, without a durable consumer).
        EventSpec("stakeholders.v1.stakeholder.registered", StakeholderRegistered, "stakeholders", ()),
        EventSpec("stakeholders.v1.stakeholder.updated", StakeholderUpdated, "stakeholders", ()),
        EventSpec("stakeholders.v1.stakeholder.role_granted", RoleGranted, "stakeholders", ()),
        EventSpec("ideas.v1.idea.proposed", IdeaProposed, "ideas", ("stakeholders", "votes", "comments")),
        EventSpec("ideas.v1.idea.refined", IdeaRefined, "ideas", ("stakeholders",)),
        EventSpec("ideas.v1.idea.status_changed", IdeaStatusChanged, "ideas", ("votes", "comments")),
        EventSpec("ideas.v1.idea.merged", IdeaMerged, "ideas", ("votes", "comments")),
        EventSpec("votes.v1.vote.cast", VoteCast, "votes", ("stakeholders", "ideas")),
        EventSpec("votes.v1.vote.changed", VoteChanged, "votes", ("ideas",)),
        EventSpec("votes.v1.vote.withdrawn", VoteWithdrawn, "votes", ("ideas",)),
        EventSpec("votes.v1.votes.moved", VotesMoved, "votes", ("ideas",)),
        EventSpec("comments.v1.comment.added", CommentAdded, "comments", ("stakeholders", "ideas")),
        EventSpec("comments.v1.comment.hidden", CommentHidden, "comments", ()),
    ]
}

_BY_MODEL: dict[type[Payload], EventSpec] = {spec.model: spec for spec in CATALOGUE.values()}


def spec_for_model(model: type[BaseModel]) -> EventSpec:
    try:
        return _BY_MODEL[model]  # type: ignore[index]
    except KeyError:
        raise LookupError(f"{model.__name__} is not in the event catalogue") from None


def payload_model(subject: str) -> type[Payload]:
    try:
        return CATALOGUE[subject].model
    except KeyError:
        raise LookupError(f"unknown event type {subject}") from None
