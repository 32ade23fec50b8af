"""The contract's enums: the platform's own (shared/events/catalogue.py, shared/auth.py,
shared/contracts/ideas.py) served under their contract names, with the contract's descriptions."""

from __future__ import annotations

import strawberry

from shared.auth import Scope
from shared.contracts.ideas import IdeaSort as _IdeaSort
from shared.events.catalogue import IdeaStatus as _IdeaStatus
from shared.events.catalogue import Role as _Role
from shared.events.catalogue import StakeholderKind as _StakeholderKind

StakeholderKind = strawberry.enum(_StakeholderKind, name="StakeholderKind")
Role = strawberry.enum(
    _Role,
    name="Role",
    description=(
        "MEMBER: propose, refine own ideas, vote, comment. MODERATOR: also hide comments. PRODUCT_TEAM: also "
        "triage (status, merge, official comments). ADMIN: everything, and grants roles."
    ),
)
IdeaStatus = strawberry.enum(
    _IdeaStatus,
    name="IdeaStatus",
    description=(
        "Allowed moves: OPEN->UNDER_REVIEW|DECLINED|MERGED; UNDER_REVIEW->PLANNED|DECLINED|OPEN|MERGED; "
        "PLANNED->IN_PROGRESS|DECLINED; IN_PROGRESS->SHIPPED|PLANNED; DECLINED->OPEN. MERGED and SHIPPED are "
        "final. Votes are accepted only on OPEN, UNDER_REVIEW and PLANNED ideas."
    ),
)
IdeaSort = strawberry.enum(
    _IdeaSort,
    name="IdeaSort",
    description=(
        "TOP: score desc. TRENDING: score gained in the last 7 days desc. NEWEST: createdAt desc. "
        "MOST_DISCUSSED: commentCount desc. Ties break on id."
    ),
)
ApiKeyScope = strawberry.enum(
    Scope,
    name="ApiKeyScope",
    description="What an integrator API key may do. READ: queries only. READ_WRITE: also mutations.",
)
