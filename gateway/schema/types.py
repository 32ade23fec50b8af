"""Object types of the contract, built from the services' snake_case answers.

Relations resolve through the request's DataLoaders; ids are opaque global ids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import strawberry
from strawberry import Info

from gateway.clients import JSON
from gateway.context import GatewayContext, ready_or_later
from gateway.ids import PageCursor, decode_cursor, encode_edge_cursor, encode_global_id
from gateway.schema.enums import ApiKeyScope, IdeaStatus, Role, StakeholderKind
from shared.problems import Problem

GInfo = Info[GatewayContext, None]
T = TypeVar("T")


# --- helpers -------------------------------------------------------------------------------------
def parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def optional_datetime(value: Any) -> datetime | None:
    return None if value is None else parse_datetime(value)


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def optional_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else as_uuid(value)


def check_first(value: int | None, default: int, maximum: int, name: str = "first") -> int:
    """`first` as asked (null: the default), refused outside 0..maximum."""
    first = default if value is None else value
    if first < 0 or first > maximum:
        raise Problem("BAD_USER_INPUT", f"{name} must be between 0 and {maximum}, got {first}")
    return first


def not_found(what: str) -> Problem:
    return Problem("NOT_FOUND", f"{what} not found")


# --- types ---------------------------------------------------------------------------------------
@strawberry.interface(description="An object with an opaque global id: node(id:) resolves any of them.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


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
    def from_data(cls, data: JSON) -> Stakeholder:
        pk = as_uuid(data["id"])
        return cls(
            id=strawberry.ID(encode_global_id("Stakeholder", pk)),
            pk=pk,
            display_name=data["display_name"],
            kind=StakeholderKind(data["kind"]),
            organization=data.get("organization"),
            role=Role(data["role"]),
            expertise=list(data.get("expertise") or []),
            created_at=parse_datetime(data["created_at"]),
        )


def stakeholder_or_missing(data: JSON | None) -> Stakeholder:
    if data is None:
        raise not_found("stakeholder")
    return Stakeholder.from_data(data)


async def load_stakeholder(info: GInfo, stakeholder_id: uuid.UUID) -> Stakeholder:
    return stakeholder_or_missing(await info.context.loaders.stakeholders.load(stakeholder_id))


async def load_idea(info: GInfo, idea_id: uuid.UUID) -> Idea | None:
    data = await info.context.loaders.ideas.load(idea_id)
    return None if data is None else Idea.from_data(data)


async def require_idea(info: GInfo, idea_id: uuid.UUID) -> Idea:
    """The idea a vote or comment is on; invisible reads as missing (NOT_FOUND)."""
    idea = await load_idea(info, idea_id)
    if idea is None:
        raise not_found("idea")
    return idea


@strawberry.type(description="Votes on one idea from one stakeholder kind. weight is the sum of those votes' weights.")
class SegmentTally:
    kind: StakeholderKind
    voters: int
    weight: int


@strawberry.type
class IdeaRevision:
    version: int
    title: str
    body: str
    tags: list[str]
    edited_at: datetime
    editor_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def editor(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.editor_id)

    @classmethod
    def from_data(cls, data: JSON) -> IdeaRevision:
        return cls(
            version=int(data["version"]),
            title=data["title"],
            body=data["body"],
            tags=list(data.get("tags") or []),
            edited_at=parse_datetime(data["edited_at"]),
            editor_id=as_uuid(data["editor_id"]),
        )


@strawberry.type
class Idea(Node):
    id: strawberry.ID
    title: str
    body: str
    tags: list[str]
    status: IdeaStatus
    status_note: str | None = strawberry.field(description="The product team's note from the last status change.")
    visible_to: list[StakeholderKind] = strawberry.field(
        description=(
            "Empty: every stakeholder, and anonymous readers. Otherwise only these kinds (plus the author, "
            "PRODUCT_TEAM and ADMIN) can see the idea or anything on it."
        )
    )
    voters: int = strawberry.field(description="Number of stakeholders with a vote on this idea.")
    score: int = strawberry.field(description="Sum of vote weights: the ranking score.")
    tally: list[SegmentTally] = strawberry.field(
        description="One entry per stakeholder kind that has votes, in enum order."
    )
    comment_count: int
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[uuid.UUID]
    author_id: strawberry.Private[uuid.UUID]
    merged_into_id: strawberry.Private[uuid.UUID | None]
    data: strawberry.Private[JSON]

    @classmethod
    def from_data(cls, data: JSON) -> Idea:
        pk = as_uuid(data["id"])
        return cls(
            id=strawberry.ID(encode_global_id("Idea", pk)),
            pk=pk,
            title=data["title"],
            body=data["body"],
            tags=list(data.get("tags") or []),
            status=IdeaStatus(data["status"]),
            status_note=data.get("status_note"),
            visible_to=[StakeholderKind(k) for k in data.get("visible_to") or []],
            voters=int(data.get("voters") or 0),
            score=int(data.get("score") or 0),
            tally=[
                SegmentTally(kind=StakeholderKind(t["kind"]), voters=int(t["voters"]), weight=int(t["weight"]))
                for t in data.get("tally") or []
            ],
            comment_count=int(data.get("comment_count") or 0),
            created_at=parse_datetime(data["created_at"]),
            updated_at=parse_datetime(data.get("updated_at") or data["created_at"]),
            author_id=as_uuid(data["author_id"]),
            merged_into_id=optional_uuid(data.get("merged_into_id")),
            data=data,
        )

    # author and my_vote are sync resolvers that may return an awaitable: a page of ideas has
    # prefetched both, and then they answer at once (see context.ready_or_later).
    @strawberry.field
    def author(self, info: GInfo) -> Stakeholder:
        return ready_or_later(info.context.loaders.stakeholders, self.author_id, stakeholder_or_missing)  # type: ignore[return-value]

    @strawberry.field(description="The caller's own vote, null when anonymous or not voted.")
    def my_vote(self, info: GInfo) -> Vote | None:
        # The loader answers None for every idea when the caller is anonymous.
        return ready_or_later(info.context.loaders.my_votes, self.pk, vote_or_none)  # type: ignore[return-value]

    @strawberry.field(description="Every version, oldest first; version 1 is the proposal.")
    async def revisions(self, info: GInfo) -> list[IdeaRevision]:
        items = await info.context.loaders.revisions.load(self.pk)
        revisions = [IdeaRevision.from_data(item) for item in items]
        return sorted(revisions, key=lambda r: r.version)

    @strawberry.field
    async def merged_into(self, info: GInfo) -> Idea | None:
        if self.merged_into_id is None:
            return None
        return await load_idea(info, self.merged_into_id)

    @strawberry.field
    async def comments(
        self, info: GInfo, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> CommentConnection:
        ctx = info.context
        count = check_first(first, 20, ctx.settings.max_first)
        cursor = decode_cursor(after or None)
        if cursor.after is None and cursor.skip == 0:
            # The common case (first page of every idea on a page of ideas): one batched call.
            page = await ctx.loaders.comment_pages.load((self.pk, count))
        else:
            fetch = min(ctx.settings.max_first, cursor.skip + count)
            page = await ctx.services.comments.list_comments(self.pk, fetch, cursor.after, await ctx.token())
            ctx.loaders.prime_comments(page.get("items") or [])
        edges, page_info, total = connection_parts(page, cursor, count, Comment.from_data)
        return CommentConnection(
            edges=[CommentEdge(cursor=c, node=n) for c, n in edges], page_info=page_info, total_count=total
        )


@strawberry.type(description="weight: 1 nice to have, 2 important, 3 must have.")
class Vote:
    weight: int
    cast_at: datetime
    idea_id: strawberry.Private[uuid.UUID]
    voter_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_data(cls, data: JSON) -> Vote:
        return cls(
            weight=int(data["weight"]),
            cast_at=parse_datetime(data["cast_at"]),
            idea_id=as_uuid(data["idea_id"]),
            voter_id=as_uuid(data["voter_id"]),
        )

    @strawberry.field
    async def idea(self, info: GInfo) -> Idea:
        return await require_idea(info, self.idea_id)

    @strawberry.field
    async def voter(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.voter_id)


async def prefetch_idea_relations(info: GInfo, ideas: Sequence[Idea], fields: set[str]) -> None:
    """Load what a page's ideas ask for (author, myVote) before the page is returned: one batch
    each, as the DataLoaders would have made, but with every value in hand when graphql-core
    completes the list, so each field answers without a task. A failed batch stays in its
    loader and surfaces at the fields, as before."""
    loaders = info.context.loaders
    loads: list[Awaitable[Any]] = []
    if "author" in fields:
        loads.append(loaders.stakeholders.load_many([idea.author_id for idea in ideas]))
    if "myVote" in fields:
        loads.append(loaders.my_votes.load_many([idea.pk for idea in ideas]))
    if loads:
        await asyncio.gather(*loads, return_exceptions=True)


def vote_or_none(data: JSON | None) -> Vote | None:
    return None if data is None else Vote.from_data(data)


@strawberry.type
class Comment(Node):
    id: strawberry.ID
    body: str
    official: bool = strawberry.field(description="True when written by PRODUCT_TEAM or ADMIN: the official answer.")
    hidden: bool = strawberry.field(
        description=(
            "Hidden comments keep their place in the thread; their body reads as empty for everyone but moderators."
        )
    )
    created_at: datetime
    pk: strawberry.Private[uuid.UUID]
    idea_id: strawberry.Private[uuid.UUID]
    author_id: strawberry.Private[uuid.UUID]
    parent_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_data(cls, data: JSON) -> Comment:
        pk = as_uuid(data["id"])
        return cls(
            id=strawberry.ID(encode_global_id("Comment", pk)),
            pk=pk,
            body=data.get("body") or "",
            official=bool(data.get("official")),
            hidden=bool(data.get("hidden")),
            created_at=parse_datetime(data["created_at"]),
            idea_id=as_uuid(data["idea_id"]),
            author_id=as_uuid(data["author_id"]),
            parent_id=optional_uuid(data.get("parent_id")),
        )

    @strawberry.field
    async def idea(self, info: GInfo) -> Idea:
        return await require_idea(info, self.idea_id)

    @strawberry.field
    async def author(self, info: GInfo) -> Stakeholder:
        return await load_stakeholder(info, self.author_id)

    @strawberry.field
    async def parent(self, info: GInfo) -> Comment | None:
        if self.parent_id is None:
            return None
        data = await info.context.loaders.comments.load(self.parent_id)
        return None if data is None else Comment.from_data(data)


@strawberry.type
class IdeaEdge:
    cursor: str
    node: Idea


@strawberry.type
class IdeaConnection:
    edges: list[IdeaEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class CommentEdge:
    cursor: str
    node: Comment


@strawberry.type
class CommentConnection:
    edges: list[CommentEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class AuthPayload:
    token: str
    stakeholder: Stakeholder


@strawberry.type(description="An integrator API key. Its secret is shown only once, when it is created.")
class ApiKey:
    id: strawberry.ID
    label: str
    scope: ApiKeyScope
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_data(cls, data: JSON) -> ApiKey:
        return cls(
            id=strawberry.ID(encode_global_id("ApiKey", as_uuid(data["id"]))),
            label=data["label"],
            scope=ApiKeyScope(data["scope"]),
            created_at=parse_datetime(data["created_at"]),
            revoked_at=optional_datetime(data.get("revoked_at")),
        )


@strawberry.type(description="A new API key with its secret: use it as 'Authorization: Bearer <secret>'. Shown once.")
class ApiKeyWithSecret(ApiKey):
    secret: str

    @classmethod
    def from_data(cls, data: JSON) -> ApiKeyWithSecret:
        key = ApiKey.from_data(data)
        return cls(
            id=key.id,
            label=key.label,
            scope=key.scope,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            secret=data["secret"],
        )


# --- connections ---------------------------------------------------------------------------------
def connection_parts(
    page: JSON, cursor: PageCursor, first: int, make: Callable[[JSON], T]
) -> tuple[list[tuple[str, T]], PageInfo, int]:
    """Edges (cursor, node), PageInfo and totalCount from a service page
    `{items, total_count, has_next_page, end_cursor}` fetched after `cursor.after`.

    The service's end_cursor is passed through. An edge's cursor is the item's own `cursor`
    when the service gives one, else the end_cursor for the last item of the page, else a
    gateway cursor "resume after the page start, skipping n"."""
    raw_items: Sequence[Any] = page.get("items") or []
    items = [item for item in raw_items if isinstance(item, dict)]
    kept = items[cursor.skip : cursor.skip + first]
    has_more_in_page = len(items) > cursor.skip + first
    end_cursor = page.get("end_cursor")
    edges: list[tuple[str, T]] = []
    for index, item in enumerate(kept):
        position = cursor.skip + index + 1
        own = item.get("cursor")
        if isinstance(own, str) and own:
            edge_cursor = own
        elif position == len(items) and not has_more_in_page and isinstance(end_cursor, str) and end_cursor:
            edge_cursor = end_cursor
        else:
            edge_cursor = encode_edge_cursor(cursor.after, position)
        edges.append((edge_cursor, make(item)))
    if has_more_in_page:
        has_next = True
        page_end: str | None = edges[-1][0] if edges else None
    else:
        has_next = bool(page.get("has_next_page"))
        page_end = edges[-1][0] if edges else (end_cursor if isinstance(end_cursor, str) else None)
    total = int(page.get("total_count") or 0)
    return edges, PageInfo(has_next_page=has_next, end_cursor=page_end), total
