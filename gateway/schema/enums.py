"""The contract's enums: the platform's own (shared/events/catalogue.py, shared/auth.py,
shared/contracts/ideas.py) served under their contract names, with the contract's descriptions."""

from __future__ import annotations

import strawberry

from shared.auth import Scope as ApiKeyScope
from shared.contracts.ideas import IdeaSort
from shared.events.catalogue import IdeaStatus, Role, StakeholderKind

__all__ = ["ApiKeyScope", "IdeaSort", "IdeaStatus", "Role", "StakeholderKind"]

# strawberry.enum marks each class (in place) with its GraphQL name and description.
strawberry.enum(StakeholderKind, name="StakeholderKind")
strawberry.enum(
    Role,
    name="Role",
    description=(
        "MEMBER: propose, refine own ideas, vote, comment. MODERATOR: also hide comments. PRODUCT_TEAM: also "
        "triage (status, merge, official comments). ADMIN: everything, and grants roles."
    ),
)
strawberry.enum(
    IdeaStatus,
    name="IdeaStatus",
    description=(
        "Allowed moves: OPEN->UNDER_REVIEW|DECLINED|MERGED; UNDER_REVIEW->PLANNED|DECLINED|OPEN|MERGED; "
        "PLANNED->IN_PROGRESS|DECLINED; IN_PROGRESS->SHIPPED|PLANNED; DECLINED->OPEN. MERGED and SHIPPED are "
        "final. Votes are accepted only on OPEN, UNDER_REVIEW and PLANNED ideas."
    ),
)
strawberry.enum(
    IdeaSort,
    name="IdeaSort",
    description=(
        "TOP: score desc. TRENDING: score gained in the last 7 days desc. NEWEST: createdAt desc. "
        "MOST_DISCUSSED: commentCount desc. Ties break on id."
    ),
)
strawberry.enum(
    ApiKeyScope,
    name="ApiKeyScope",
    description="What an integrator API key may do. READ: queries only. READ_WRITE: also mutations.",
)
