"""The event catalogue, written down once: subject, payload model, publisher, consumers, the
payload field that names the aggregate, and each stream's ordering policy.

Subjects are `<context>.v1.<aggregate>.<event>`; one JetStream stream per context. Every
payload is validated by its model when it is written (outbox) and when it is read (consumer).
Code names events by their payload model (`subject_of(VoteCast)`), never by a subject string.

Ordering, one policy per stream (`ORDERING`), applied by the consumer runner for every
projection of the stream:
- VERSIONED (STAKEHOLDERS, IDEAS): every event carries its aggregate's version after the change
  (`Envelope.aggregate_version`, 1 for the event that creates the aggregate) and the state that
  its projections keep (a status change carries the new status, a refinement the new title and
  tags). A projection applies an event only if it is newer than the last one it applied for that
  aggregate, and skips it otherwise (its state is superseded); so any delivery order ends in the
  same state. An event about an aggregate the projection does not know yet, other than the one
  that creates it, is retried later (`RetryLater`) by its handler.
- COMMUTATIVE (VOTES, COMMENTS): events carry deltas (a vote's weight, one more comment) whose
  sum does not depend on the order; no version is needed. Exactly once comes from the inbox.
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


def stream_for_subject(subject: str) -> str:
    """The stream of a subject: its context, upper-cased ("votes.v1.vote.cast" -> "VOTES")."""
    return subject.split(".", 1)[0].upper()


class Ordering(StrEnum):
    VERSIONED = "versioned"
    COMMUTATIVE = "commutative"


ORDERING: dict[str, Ordering] = {
    "STAKEHOLDERS": Ordering.VERSIONED,
    "IDEAS": Ordering.VERSIONED,
    "VOTES": Ordering.COMMUTATIVE,
    "COMMENTS": Ordering.COMMUTATIVE,
}


@dataclass(frozen=True)
class EventSpec:
    subject: str
    model: type[Payload]
    publisher: str
    consumers: tuple[str, ...]
    # The payload field holding the id of the aggregate the event is about (the envelope's subject_id).
    key: str
    # The payload fields naming every idea the event changes (live updates follow them).
    ideas: tuple[str, ...] = ()
    # The payload schema's version.
    version: int = 1

    @property
    def stream(self) -> str:
        return stream_for_subject(self.subject)

    @property
    def ordering(self) -> Ordering:
        return ORDERING[self.stream]


CATALOGUE: dict[str, EventSpec] = {
    spec.subject: spec
    for spec in [
        # consumers: the services whose durable consumers handle the event (the gateway also
        # listens to every subject for live subscriptions, without a durable consumer).
        EventSpec(
            "stakeholders.v1.stakeholder.registered", StakeholderRegistered, "stakeholders", (), "stakeholder_id"
        ),
        EventSpec("stakeholders.v1.stakeholder.updated", StakeholderUpdated, "stakeholders", (), "stakeholder_id"),
        EventSpec("stakeholders.v1.stakeholder.role_granted", RoleGranted, "stakeholders", (), "stakeholder_id"),
        EventSpec(
            "ideas.v1.idea.proposed",
            IdeaProposed,
            "ideas",
            ("stakeholders", "votes", "comments"),
            "idea_id",
            ("idea_id",),
        ),
        EventSpec("ideas.v1.idea.refined", IdeaRefined, "ideas", ("stakeholders",), "idea_id", ("idea_id",)),
        EventSpec(
            "ideas.v1.idea.status_changed", IdeaStatusChanged, "ideas", ("votes", "comments"), "idea_id", ("idea_id",)
        ),
        EventSpec(
            "ideas.v1.idea.merged", IdeaMerged, "ideas", ("votes", "comments"), "idea_id", ("idea_id", "target_id")
        ),
        EventSpec("votes.v1.vote.cast", VoteCast, "votes", ("stakeholders", "ideas"), "idea_id", ("idea_id",)),
        EventSpec("votes.v1.vote.changed", VoteChanged, "votes", ("ideas",), "idea_id", ("idea_id",)),
        EventSpec("votes.v1.vote.withdrawn", VoteWithdrawn, "votes", ("ideas",), "idea_id", ("idea_id",)),
        EventSpec("votes.v1.votes.moved", VotesMoved, "votes", ("ideas",), "source_id", ("source_id", "target_id")),
        EventSpec(
            "comments.v1.comment.added", CommentAdded, "comments", ("stakeholders", "ideas"), "comment_id", ("idea_id",)
        ),
        EventSpec("comments.v1.comment.hidden", CommentHidden, "comments", (), "comment_id", ("idea_id",)),
    ]
}

_BY_MODEL: dict[type[Payload], EventSpec] = {spec.model: spec for spec in CATALOGUE.values()}


def spec_for_model(model: type[BaseModel]) -> EventSpec:
    try:
        return _BY_MODEL[model]  # type: ignore[index]
    except KeyError:
        raise LookupError(f"{model.__name__} is not in the event catalogue") from None


def subject_of(model: type[Payload]) -> str:
    return spec_for_model(model).subject


def stream_subjects(stream: str) -> list[str]:
    """Every subject of one stream (e.g. "IDEAS"), in catalogue order."""
    return [spec.subject for spec in CATALOGUE.values() if spec.stream == stream]


def spec_of(subject: str) -> EventSpec:
    try:
        return CATALOGUE[subject]
    except KeyError:
        raise LookupError(f"unknown event type {subject}") from None


def payload_model(subject: str) -> type[Payload]:
    return spec_of(subject).model
