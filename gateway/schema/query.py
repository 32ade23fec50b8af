"""Query root."""

from __future__ import annotations

import strawberry

from gateway.ids import decode_global_id, parse_id
from gateway.schema.api_key import ApiKey
from gateway.schema.comment import Comment
from gateway.schema.common import GInfo, Node, check_first
from gateway.schema.connections import Connection, check_after, connection
from gateway.schema.enums import IdeaSort, IdeaStatus, StakeholderKind
from gateway.schema.idea import Idea, load_idea, prefetch_idea_relations
from gateway.schema.selection import selected_under, selects
from gateway.schema.stakeholder import Stakeholder


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: GInfo, id: strawberry.ID) -> Node | None:
        decoded = decode_global_id(id)
        if decoded is None:
            return None
        loaders = info.context.loaders
        if decoded.type_name == "Idea":
            return await load_idea(info, decoded.id)
        if decoded.type_name == "Stakeholder":
            stakeholder = await loaders.stakeholders.load(decoded.id)
            return None if stakeholder is None else Stakeholder.from_model(stakeholder)
        if decoded.type_name == "Comment":
            comment = await loaders.comments.load(decoded.id)
            return None if comment is None else Comment.from_model(comment)
        return None

    @strawberry.field(description="The caller; null when anonymous.")
    async def me(self, info: GInfo) -> Stakeholder | None:
        ctx = info.context
        principal = await ctx.principal()
        if principal is None:
            return None
        me = await ctx.services.stakeholders.me(principal.token)
        ctx.loaders.prime_stakeholders([me])
        return Stakeholder.from_model(me)

    @strawberry.field
    async def idea(self, info: GInfo, id: strawberry.ID) -> Idea | None:
        idea_id = parse_id(id, "Idea")
        return None if idea_id is None else await load_idea(info, idea_id)

    @strawberry.field(
        description=(
            "Only ideas the caller may see. search: full-text over title and body. segment: rank and count by that "
            "kind's votes only. MERGED ideas are left out unless status asks for them."
        )
    )
    async def ideas(
        self,
        info: GInfo,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        sort: IdeaSort | None = IdeaSort.TOP,
        status: list[IdeaStatus] | None = strawberry.UNSET,
        tag: str | None = strawberry.UNSET,
        search: str | None = strawberry.UNSET,
        segment: StakeholderKind | None = strawberry.UNSET,
    ) -> Connection[Idea]:
        ctx = info.context
        count = check_first(first, 20, ctx.settings.max_first)
        page = await ctx.services.ideas.list_ideas(
            token=await ctx.token(),
            first=count,
            after=check_after(after),
            sort=(sort or IdeaSort.TOP).value,
            status=[s.value for s in status or []],
            tag=tag or None,
            search=search or None,
            segment=segment.value if segment else None,
            with_total=selects(info, "totalCount"),
        )
        ctx.loaders.prime_ideas(page.items)
        ideas = connection(page, Idea.from_model)
        await prefetch_idea_relations(info, [edge.node for edge in ideas.edges], selected_under(info, "edges", "node"))
        return ideas

    @strawberry.field(
        description=(
            "Ideas the caller may see whose title and body resemble the text, most similar first: duplicate "
            "detection while proposing."
        )
    )
    async def similar_ideas(self, info: GInfo, text: str, first: int | None = 5) -> list[Idea]:
        ctx = info.context
        count = check_first(first, 5, ctx.settings.max_first)
        if count == 0 or not text.strip():
            return []
        found = await ctx.services.ideas.similar(text, count, await ctx.token())
        ctx.loaders.prime_ideas(found)
        return [Idea.from_model(idea) for idea in found[:count]]

    @strawberry.field(
        description="Stakeholders who list the tag as expertise, most active on ideas with that tag first."
    )
    async def experts(self, info: GInfo, tag: str, first: int | None = 10) -> list[Stakeholder]:
        ctx = info.context
        count = check_first(first, 10, ctx.settings.max_first)
        if count == 0:
            return []
        found = await ctx.services.stakeholders.experts(tag, count, await ctx.token())
        ctx.loaders.prime_stakeholders(found)
        return [Stakeholder.from_model(s) for s in found[:count]]

    @strawberry.field(description="The caller's API keys (revoked ones included). Needs a token.")
    async def api_keys(self, info: GInfo) -> list[ApiKey]:
        principal = await info.context.require_principal()
        keys = await info.context.services.stakeholders.list_api_keys(principal.token)
        return [ApiKey.from_model(key) for key in keys]
