"""Mutation root. Every mutation but register/login needs a token with write scope and is
rate limited per stakeholder; register/login are rate limited per client address."""

from __future__ import annotations

from typing import Any

import strawberry

from gateway.clients import JSON
from gateway.ids import require_id
from gateway.schema.api_key import ApiKeyWithSecret
from gateway.schema.comment import Comment
from gateway.schema.common import GInfo
from gateway.schema.enums import ApiKeyScope, IdeaStatus, Role
from gateway.schema.idea import Idea
from gateway.schema.inputs import ProposeIdeaInput, RefineIdeaInput, RegisterInput, UpdateProfileInput
from gateway.schema.stakeholder import AuthPayload, Stakeholder
from gateway.schema.vote import Vote
from shared.auth import SESSION_WRITER
from shared.contracts.ideas import IdeaPublic
from shared.contracts.stakeholders import AuthResponse
from shared.problems import Problem


def _given(value: Any) -> bool:
    return value is not strawberry.UNSET and value is not None


def _auth_payload(info: GInfo, answer: AuthResponse) -> AuthPayload:
    info.context.loaders.prime_stakeholders([answer.stakeholder])
    return AuthPayload.from_model(answer)


def _idea(info: GInfo, answer: IdeaPublic) -> Idea:
    info.context.loaders.prime_ideas([answer], force=True)
    return Idea.from_model(answer)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: GInfo, input: RegisterInput) -> AuthPayload:
        info.context.check_anonymous_rate()
        data: JSON = {
            "email": input.email,
            "password": input.password,
            "display_name": input.display_name,
            "kind": input.kind.value,
        }
        if _given(input.organization):
            data["organization"] = input.organization
        if _given(input.expertise):
            data["expertise"] = input.expertise
        return _auth_payload(info, await info.context.services.stakeholders.register(data))

    @strawberry.mutation
    async def login(self, info: GInfo, email: str, password: str) -> AuthPayload:
        info.context.check_anonymous_rate()
        return _auth_payload(info, await info.context.services.stakeholders.login(email, password))

    @strawberry.mutation
    async def propose_idea(self, info: GInfo, input: ProposeIdeaInput) -> Idea:
        principal = await info.context.require()
        data: JSON = {"title": input.title, "body": input.body}
        if _given(input.tags):
            data["tags"] = input.tags
        if _given(input.visible_to):
            data["visible_to"] = [k.value for k in input.visible_to or []]
        return _idea(info, await info.context.services.ideas.propose(data, principal.token))

    @strawberry.mutation(description="Author, PRODUCT_TEAM or ADMIN; appends a revision.")
    async def refine_idea(self, info: GInfo, id: strawberry.ID, input: RefineIdeaInput) -> Idea:
        principal = await info.context.require()
        idea_id = require_id(id, "Idea")
        changes: JSON = {}
        for name in ("title", "body", "tags"):
            value = getattr(input, name)
            if _given(value):
                changes[name] = value
        return _idea(info, await info.context.services.ideas.refine(idea_id, changes, principal.token))

    @strawberry.mutation(description="One vote per stakeholder per idea; casting again changes the weight (1..3).")
    async def cast_vote(self, info: GInfo, idea_id: strawberry.ID, weight: int | None = 1) -> Vote:
        principal = await info.context.require()
        weight = 1 if weight is None else weight
        if not 1 <= weight <= 3:
            raise Problem("BAD_USER_INPUT", f"weight must be 1, 2 or 3, got {weight}")
        target = require_id(idea_id, "Idea")
        vote = await info.context.services.votes.cast(target, weight, principal.token)
        info.context.loaders.my_votes.prime(target, vote, force=True)
        return Vote.from_model(vote)

    @strawberry.mutation(description="True when a vote was removed, false when there was none.")
    async def withdraw_vote(self, info: GInfo, idea_id: strawberry.ID) -> bool:
        principal = await info.context.require()
        target = require_id(idea_id, "Idea")
        removed = await info.context.services.votes.withdraw(target, principal.token)
        info.context.loaders.my_votes.prime(target, None, force=True)
        return removed

    @strawberry.mutation
    async def add_comment(
        self, info: GInfo, idea_id: strawberry.ID, body: str, parent_id: strawberry.ID | None = strawberry.UNSET
    ) -> Comment:
        principal = await info.context.require()
        target = require_id(idea_id, "Idea")
        parent = require_id(str(parent_id), "Comment") if _given(parent_id) else None
        comment = await info.context.services.comments.add(target, body, parent, principal.token)
        info.context.loaders.prime_comments([comment])
        return Comment.from_model(comment)

    @strawberry.mutation(description="PRODUCT_TEAM or ADMIN; only the moves IdeaStatus allows.")
    async def set_idea_status(
        self, info: GInfo, id: strawberry.ID, status: IdeaStatus, note: str | None = strawberry.UNSET
    ) -> Idea:
        principal = await info.context.require()
        idea_id = require_id(id, "Idea")
        idea = await info.context.services.ideas.set_status(
            idea_id, status.value, note if _given(note) else None, principal.token
        )
        return _idea(info, idea)

    @strawberry.mutation(
        description=(
            "PRODUCT_TEAM or ADMIN. The source becomes MERGED with mergedInto = target; its votes move to the target "
            "(a stakeholder who voted on both keeps one vote, the higher weight); returns the target."
        )
    )
    async def merge_ideas(self, info: GInfo, source_id: strawberry.ID, target_id: strawberry.ID) -> Idea:
        principal = await info.context.require()
        source = require_id(source_id, "Idea")
        target = require_id(target_id, "Idea")
        info.context.loaders.forget_idea(source)
        return _idea(info, await info.context.services.ideas.merge(source, target, principal.token))

    @strawberry.mutation
    async def flag_comment(self, info: GInfo, id: strawberry.ID, reason: str) -> bool:
        principal = await info.context.require()
        return await info.context.services.comments.flag(require_id(id, "Comment"), reason, principal.token)

    @strawberry.mutation(description="MODERATOR, PRODUCT_TEAM or ADMIN.")
    async def hide_comment(self, info: GInfo, id: strawberry.ID, reason: str) -> Comment:
        principal = await info.context.require()
        comment = await info.context.services.comments.hide(require_id(id, "Comment"), reason, principal.token)
        info.context.loaders.prime_comments([comment], force=True)
        return Comment.from_model(comment)

    @strawberry.mutation(description="The caller edits their own display name, organization and expertise.")
    async def update_profile(self, info: GInfo, input: UpdateProfileInput) -> Stakeholder:
        principal = await info.context.require()
        fields = ("display_name", "organization", "expertise")
        changes = {name: getattr(input, name) for name in fields if getattr(input, name) is not strawberry.UNSET}
        stakeholder = await info.context.services.stakeholders.update_me(changes, principal.token)
        info.context.loaders.stakeholder_changed(stakeholder)
        return Stakeholder.from_model(stakeholder)

    @strawberry.mutation(description="ADMIN only.")
    async def grant_role(self, info: GInfo, stakeholder_id: strawberry.ID, role: Role) -> Stakeholder:
        principal = await info.context.require()
        target = require_id(stakeholder_id, "Stakeholder")
        stakeholder = await info.context.services.stakeholders.grant_role(target, role.value, principal.token)
        info.context.loaders.stakeholder_changed(stakeholder)
        return Stakeholder.from_model(stakeholder)

    @strawberry.mutation(description="A new API key for integrations; its secret is in the answer, and only there.")
    async def create_api_key(self, info: GInfo, label: str, scope: ApiKeyScope) -> ApiKeyWithSecret:
        principal = await info.context.require(SESSION_WRITER)
        key = await info.context.services.stakeholders.create_api_key(label, scope.value, principal.token)
        return ApiKeyWithSecret.with_secret(key)

    @strawberry.mutation(description="True when the key was revoked (owner or ADMIN).")
    async def revoke_api_key(self, info: GInfo, id: strawberry.ID) -> bool:
        principal = await info.context.require(SESSION_WRITER)
        revoked = await info.context.services.stakeholders.revoke_api_key(require_id(id, "ApiKey"), principal.token)
        info.context.runtime.authenticator.forget_api_keys()
        return revoked
