"""The contract's enums (names are the public API), plus the added ApiKeyScope."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class StakeholderKind(Enum):
    CUSTOMER = "CUSTOMER"
    SUPPLIER = "SUPPLIER"
    PARTNER = "PARTNER"
    EMPLOYEE = "EMPLOYEE"


@strawberry.enum(
    description=(
        "MEMBER: propose, refine own ideas, vote, comment. MODERATOR: also hide comments. PRODUCT_TEAM: also "
        "triage (status, merge, official comments). ADMIN: everything, and grants roles."
    )
)
class Role(Enum):
    MEMBER = "MEMBER"
    MODERATOR = "MODERATOR"
    PRODUCT_TEAM = "PRODUCT_TEAM"
    ADMIN = "ADMIN"


@strawberry.enum(
    description=(
        "Allowed moves: OPEN->UNDER_REVIEW|DECLINED|MERGED; UNDER_REVIEW->PLANNED|DECLINED|OPEN|MERGED; "
        "PLANNED->IN_PROGRESS|DECLINED; IN_PROGRESS->SHIPPED|PLANNED; DECLINED->OPEN. MERGED and SHIPPED are "
        "final. Votes are accepted only on OPEN, UNDER_REVIEW and PLANNED ideas."
    )
)
class IdeaStatus(Enum):
    OPEN = "OPEN"
    UNDER_REVIEW = "UNDER_REVIEW"
    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    SHIPPED = "SHIPPED"
    DECLINED = "DECLINED"
    MERGED = "MERGED"


@strawberry.enum(
    description=(
        "TOP: score desc. TRENDING: score gained in the last 7 days desc. NEWEST: createdAt desc. "
        "MOST_DISCUSSED: commentCount desc. Ties break on id."
    )
)
class IdeaSort(Enum):
    TOP = "TOP"
    TRENDING = "TRENDING"
    NEWEST = "NEWEST"
    MOST_DISCUSSED = "MOST_DISCUSSED"


@strawberry.enum(description="What an integrator API key may do. READ: queries only. READ_WRITE: also mutations.")
class ApiKeyScope(Enum):
    READ = "read"
    READ_WRITE = "read-write"
