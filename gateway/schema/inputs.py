"""Input types of the contract. Optional fields default to UNSET: the SDL shows no default,
and "not given" stays distinct from null (RefineIdeaInput sends only what was given)."""

from __future__ import annotations

import strawberry

from gateway.schema.enums import StakeholderKind


@strawberry.input
class RegisterInput:
    email: str
    password: str = strawberry.field(description="At least 10 characters.")
    display_name: str
    kind: StakeholderKind
    organization: str | None = strawberry.UNSET
    expertise: list[str] | None = strawberry.UNSET


@strawberry.input(description="Fields left out stay as they are.")
class UpdateProfileInput:
    display_name: str | None = strawberry.UNSET
    organization: str | None = strawberry.UNSET
    expertise: list[str] | None = strawberry.UNSET


@strawberry.input
class ProposeIdeaInput:
    title: str = strawberry.field(description="1 to 140 characters after trimming.")
    body: str = strawberry.field(description="1 to 20,000 characters.")
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="At most 10 tags, each 1 to 40 characters of [a-z0-9-]."
    )
    visible_to: list[StakeholderKind] | None = strawberry.UNSET


@strawberry.input
class RefineIdeaInput:
    title: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
