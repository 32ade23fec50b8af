"""Idea use cases. Services add and flush; the request (or consumer) boundary commits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ideas import domain
from services.ideas.models import (
    Idea,
    IdeaCreate,
    IdeaPublic,
    IdeaRevision,
    IdeaRevisionPublic,
    IdeaSort,
    IdeaUpdate,
    SegmentTally,
)
from services.ideas.repository import IdeaFilter, IdeaRepository, sort_column
from shared.auth import Principal
from shared.events.catalogue import CommentAdded, IdeaStatus, StakeholderKind
from shared.events.failures import RetryLater
from shared.live import idea_live_subject
from shared.pagination import Page, decode_cursor, keyset_page
from shared.problems import bad_input, not_found, storable_text
from shared.uow import UnitOfWork
from shared.visibility import can_see

MAX_SEARCH = 500
MAX_SIMILAR = 20
MAX_SIMILAR_TEXT = domain.MAX_TITLE + domain.MAX_BODY + 2
SIMILAR_TRIGRAM_CHARS = 500  # trigram similarity looks at the start of the text (the title, typically)
SIMILAR_MAX_WORDS = 32
WORD_RE = re.compile(r"[^\W_]+")


def public(idea: Any) -> IdeaPublic:
    """The public view of an Idea, or of a row of the idea table (repository.IDEA_TABLE)."""
    counts = {c: getattr(idea, c) for k in domain.KINDS for c in (domain.voters_column(k), domain.weight_column(k))}
    return IdeaPublic(
        id=idea.id,
        title=idea.title,
        body=idea.body,
        tags=list(idea.tags),
        status=IdeaStatus(idea.status),
        status_note=idea.status_note,
        visible_to=[StakeholderKind(k) for k in idea.visible_to],
        author_id=idea.author_id,
        voters=idea.voters,
        score=idea.score,
        tally=[SegmentTally(kind=k, voters=v, weight=w) for k, v, w in domain.tally(counts)],
        comment_count=idea.comment_count,
        merged_into_id=idea.merged_into_id,
        created_at=idea.created_at,
        updated_at=idea.updated_at,
        version=idea.version,
        recent_score=idea.recent_score,
    )


def list_order(sort: IdeaSort, segment: StakeholderKind | None) -> tuple[str, str]:
    """The list's keyset order: its name in cursors, and the idea column it sorts by (then id)."""
    key = str(sort_column(sort, segment).key)
    return f"ideas:{key}", key


class IdeaService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.repo = IdeaRepository(uow.session)

    def _changed(self, idea_id: uuid.UUID) -> None:
        """Hint (after commit) that the idea changed, for the gateway's ideaChanged subscriptions."""
        self.uow.live(idea_live_subject(idea_id), {"idea_id": str(idea_id)})

    async def _visible(self, idea_id: uuid.UUID, viewer: Principal | None, *, for_update: bool = False) -> Idea:
        idea = await self.repo.get(idea_id, for_update=for_update)
        if idea is None or not can_see(viewer, idea.visible_to, idea.author_id):
            raise not_found("idea")  # invisible == missing
        return idea

    # --- writes --------------------------------------------------------------------------
    async def propose(self, principal: Principal, data: IdeaCreate) -> IdeaPublic:
        title = domain.clean_title(data.title)
        body = domain.clean_body(data.body)
        tags = domain.clean_tags(data.tags)
        visible_to = domain.clean_visible_to(data.visible_to)
        now = datetime.now(UTC)
        idea = Idea(
            title=title,
            body=body,
            tags=tags,
            visible_to=visible_to,
            author_id=principal.id,
            created_at=now,
            updated_at=now,
        )
        await self.repo.add(idea)
        await self.repo.add_revision(
            IdeaRevision(
                idea_id=idea.id,
                version=1,
                title=title,
                body=body,
                tags=tags,
                editor_id=principal.id,
                edited_at=idea.created_at,
            )
        )
        event = domain.proposed_event(idea.id, principal.id, title, tags, visible_to, idea.created_at)
        self.uow.emit(event, aggregate_version=idea.event_version)
        return public(idea)

    async def refine(self, principal: Principal, idea_id: uuid.UUID, data: IdeaUpdate) -> IdeaPublic:
        idea = await self._visible(idea_id, principal, for_update=True)
        domain.check_can_refine(principal, idea.author_id, IdeaStatus(idea.status))
        if data.title is None and data.body is None and data.tags is None:
            raise bad_input("give at least one of title, body, tags")
        title = domain.clean_title(data.title) if data.title is not None else idea.title
        body = domain.clean_body(data.body) if data.body is not None else idea.body
        tags = domain.clean_tags(data.tags) if data.tags is not None else list(idea.tags)
        now = datetime.now(UTC)
        idea.title, idea.body, idea.tags = title, body, tags
        idea.version += 1
        idea.event_version += 1
        idea.updated_at = now
        await self.repo.add(idea)
        await self.repo.add_revision(
            IdeaRevision(
                idea_id=idea.id,
                version=idea.version,
                title=title,
                body=body,
                tags=tags,
                editor_id=principal.id,
                edited_at=now,
            )
        )
        event = domain.refined_event(idea.id, idea.version, principal.id, title, tags)
        self.uow.emit(event, aggregate_version=idea.event_version)
        self._changed(idea.id)
        return public(idea)

    async def set_status(
        self, principal: Principal, idea_id: uuid.UUID, status: IdeaStatus, note: str | None
    ) -> IdeaPublic:
        idea = await self._visible(idea_id, principal, for_update=True)
        domain.check_staff(principal, "change an idea's status")
        note = domain.clean_note(note)
        current = IdeaStatus(idea.status)
        domain.check_transition(current, status)
        idea.status = status
        idea.status_note = note
        idea.updated_at = datetime.now(UTC)
        idea.event_version += 1
        await self.repo.add(idea)
        event = domain.status_changed_event(idea.id, current, status, note, principal.id)
        self.uow.emit(event, aggregate_version=idea.event_version)
        self._changed(idea.id)
        return public(idea)

    async def merge(self, principal: Principal, source_id: uuid.UUID, target_id: uuid.UUID) -> IdeaPublic:
        await self._visible(source_id, principal)
        domain.check_staff(principal, "merge ideas")
        locked = await self.repo.lock_many([source_id, target_id])
        source, target = locked.get(source_id), locked.get(target_id)
        if source is None:
            raise not_found("idea")
        if target is None or not can_see(principal, target.visible_to, target.author_id):
            raise not_found("target idea")
        domain.check_merge(source.id, IdeaStatus(source.status), target.id, IdeaStatus(target.status))
        source.status = IdeaStatus.MERGED
        source.merged_into_id = target.id
        source.status_note = None
        source.updated_at = datetime.now(UTC)
        source.event_version += 1
        await self.repo.add(source)
        self.uow.emit(domain.merged_event(source.id, target.id, principal.id), aggregate_version=source.event_version)
        self._changed(source.id)
        self._changed(target.id)
        return public(target)

    # --- reads ---------------------------------------------------------------------------
    async def get(self, principal: Principal | None, idea_id: uuid.UUID) -> IdeaPublic:
        return public(await self._visible(idea_id, principal))

    async def batch(self, principal: Principal | None, ids: Sequence[uuid.UUID]) -> list[IdeaPublic]:
        wanted = list(dict.fromkeys(ids))
        found = {i.id: i for i in await self.repo.get_many(wanted, principal)}
        return [public(found[i]) for i in wanted if i in found]  # in the order asked

    async def revisions(self, principal: Principal | None, idea_id: uuid.UUID) -> list[IdeaRevisionPublic]:
        await self._visible(idea_id, principal)
        return [IdeaRevisionPublic.model_validate(r, from_attributes=True) for r in await self.repo.revisions(idea_id)]

    async def list_ideas(
        self,
        principal: Principal | None,
        *,
        first: int,
        after: str | None,
        sort: IdeaSort,
        statuses: Sequence[IdeaStatus] | None,
        tag: str | None,
        search: str | None,
        segment: StakeholderKind | None,
        with_total: bool = True,
    ) -> Page[IdeaPublic]:
        if search is not None:
            search = storable_text(search, "search").strip() or None
            if search is not None and len(search) > MAX_SEARCH:
                raise bad_input(f"search has at most {MAX_SEARCH} characters", field="search")
        flt = IdeaFilter(
            viewer=principal,
            statuses=list(dict.fromkeys(statuses)) if statuses else None,
            tag=domain.clean_tag_filter(tag) if tag is not None else None,
            search=search,
            segment=segment,
        )
        order, key = list_order(sort, segment)
        types = (datetime if key == "created_at" else int, uuid.UUID)
        position = decode_cursor(after, order, types) if after else None
        rows = await self.repo.page(flt, sort, position, first + 1)
        return keyset_page(
            rows,
            first,
            order=order,
            position=lambda row: (getattr(row, key), row.id),
            item=public,
            total_count=await self.repo.count(flt) if with_total else None,
        )

    async def similar(self, principal: Principal | None, text: str, first: int) -> list[IdeaPublic]:
        if not 0 <= first <= MAX_SIMILAR:
            raise bad_input(f"first must be between 0 and {MAX_SIMILAR}", field="first")
        value = " ".join(storable_text(text, "text").split())
        if not value:
            raise bad_input("text must not be empty", field="text")
        if len(value) > MAX_SIMILAR_TEXT:
            raise bad_input(f"text has at most {MAX_SIMILAR_TEXT} characters", field="text")
        if first == 0:
            return []
        words = list(dict.fromkeys(WORD_RE.findall(value.lower())))[:SIMILAR_MAX_WORDS]
        or_query = " | ".join(words) if words else None  # letters and digits only: no tsquery syntax
        ideas = await self.repo.similar(principal, value[:SIMILAR_TRIGRAM_CHARS], or_query, first)
        return [public(i) for i in ideas]

    # --- projections of VOTES and COMMENTS (COMMUTATIVE streams: deltas, in any order) -----------------
    async def apply_tally(self, deltas: list[domain.TallyDelta], at: datetime) -> None:
        """One vote event's deltas: day buckets first, then the ideas in id order (the lock order
        the trending expiry uses too). An idea not known yet: RetryLater."""
        changes = domain.sum_deltas(deltas)
        day = domain.score_day(at)
        counts_recent = domain.in_window(day, datetime.now(UTC))
        for change in changes:
            if counts_recent and change.weight != 0:
                await self.repo.add_score_day(change.idea_id, day, change.weight)
        for change in changes:
            if not await self.repo.apply_tally(change, change.weight if counts_recent else 0):
                raise RetryLater(f"idea {change.idea_id} not known yet")
            self._changed(change.idea_id)

    async def comment_added(self, event: CommentAdded) -> None:
        if not await self.repo.add_comment(event.idea_id):
            raise RetryLater(f"idea {event.idea_id} not known yet")
        self._changed(event.idea_id)


# --- trending upkeep ---------------------------------------------------------------------------
async def expire_trending(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime, batch_size: int = 1_000
) -> int:
    """Subtract day buckets that left the trending window at `now` from recent_score and delete
    them (each batch in one transaction; replicas skip each other's rows). Returns rows removed."""
    before = domain.window_start(now)
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            removed, _ = await IdeaRepository(session).expire_score_days(before, batch_size)
        total += removed
        if removed < batch_size:
            return total
