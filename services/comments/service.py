"""Comment use cases. Services add and flush; the request boundary commits.

Every path first finds the idea in this service's own projection and checks the caller may
see it: unknown and invisible read the same (NOT_FOUND)."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.comments import domain
from services.comments.models import Comment, CommentCreate, CommentPublic, IdeaVisibility, utcnow
from services.comments.repository import CommentRepository
from shared.auth import Principal
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatus, IdeaStatusChanged
from shared.events.failures import RetryLater
from shared.pagination import Page, check_page_size, decode_cursor, keyset_page
from shared.problems import forbidden, not_found
from shared.uow import UnitOfWork
from shared.visibility import can_see


def public(comment: Comment, viewer: Principal | None) -> CommentPublic:
    moderator = domain.is_moderator(viewer)
    return CommentPublic(
        id=comment.id,
        idea_id=comment.idea_id,
        author_id=comment.author_id,
        parent_id=comment.parent_id,
        body=domain.visible_body(comment.body, comment.hidden, viewer),
        official=comment.official,
        hidden=comment.hidden,
        created_at=comment.created_at,
        hidden_reason=comment.hidden_reason if moderator else None,
        flag_count=comment.flag_count if moderator else None,
    )


def _sees(idea: IdeaVisibility, viewer: Principal | None) -> bool:
    return can_see(viewer, idea.visible_to, idea.author_id)


ORDER = "comments"  # oldest first: (created_at, id)


def _page(comments: list[Comment], first: int, total: int, viewer: Principal | None) -> Page[CommentPublic]:
    return keyset_page(
        comments,
        first,
        order=ORDER,
        position=lambda c: (c.created_at, c.id),
        item=lambda c: public(c, viewer),
        total_count=total,
    )


class CommentService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.repo = CommentRepository(uow.session)

    async def _visible_idea(self, idea_id: uuid.UUID, principal: Principal | None) -> IdeaVisibility:
        idea = await self.repo.idea(idea_id)
        if idea is None or not _sees(idea, principal):
            raise not_found("idea")
        return idea

    async def _visible_comment(
        self, comment_id: uuid.UUID, principal: Principal | None, for_update: bool = False
    ) -> Comment:
        found = await self.repo.get_with_idea(comment_id, for_update=for_update)
        if found is None or not _sees(found[1], principal):
            raise not_found("comment")
        return found[0]

    async def add(self, principal: Principal, idea_id: uuid.UUID, data: CommentCreate) -> CommentPublic:
        idea = await self._visible_idea(idea_id, principal)
        body = domain.check_body(data.body)
        if data.parent_id is not None:
            found = await self.repo.get_with_idea(data.parent_id)
            # A parent the caller may not see reads as unknown: no leak of its existence.
            if found is None or not _sees(found[1], principal):
                raise not_found("parent comment")
            domain.check_parent(idea.idea_id, found[0].idea_id)
        domain.check_accepts_comments(idea.status)
        comment = Comment(
            idea_id=idea.idea_id,
            author_id=principal.id,
            parent_id=data.parent_id,
            body=body,
            official=domain.is_official(principal),
        )
        await self.repo.add(comment)
        self.uow.emit(
            domain.comment_added(
                comment.id, comment.idea_id, comment.author_id, comment.parent_id, comment.official, comment.created_at
            )
        )
        return public(comment, principal)

    async def get(self, principal: Principal | None, comment_id: uuid.UUID) -> CommentPublic:
        return public(await self._visible_comment(comment_id, principal), principal)

    async def get_many(self, principal: Principal | None, ids: list[uuid.UUID]) -> list[CommentPublic]:
        """The visible ones among `ids`, in the order asked (unknown and invisible left out)."""
        wanted = list(dict.fromkeys(ids))
        found = {c.id: c for c, idea in await self.repo.get_many_with_ideas(wanted) if _sees(idea, principal)}
        return [public(found[i], principal) for i in wanted if i in found]

    async def list_for_idea(
        self, principal: Principal | None, idea_id: uuid.UUID, first: int, after: str | None
    ) -> Page[CommentPublic]:
        first = check_page_size(first)
        position = decode_cursor(after, ORDER, (datetime, uuid.UUID)) if after else None
        await self._visible_idea(idea_id, principal)
        comments = await self.repo.page(idea_id, first + 1, position)
        total = await self.repo.count(idea_id)
        return _page(comments, first, total, principal)

    async def by_ideas(
        self, principal: Principal | None, idea_ids: list[uuid.UUID], first: int
    ) -> dict[str, Page[CommentPublic]]:
        """The first page of each visible idea's comments, in three queries whatever the number
        of ideas: the projection rows, the pages (one lateral query), the counts (grouped)."""
        first = check_page_size(first)
        wanted = list(dict.fromkeys(idea_ids))
        visible = [idea.idea_id for idea in await self.repo.ideas(wanted) if _sees(idea, principal)]
        if not visible:
            return {}
        comments = await self.repo.first_pages(visible, first + 1)
        counts = await self.repo.counts(visible)
        per_idea: dict[uuid.UUID, list[Comment]] = {i: [] for i in visible}
        for comment in comments:
            per_idea[comment.idea_id].append(comment)
        ordered = [i for i in wanted if i in per_idea]
        return {str(i): _page(per_idea[i], first, counts.get(i, 0), principal) for i in ordered}

    async def hide(self, principal: Principal, comment_id: uuid.UUID, reason: str) -> CommentPublic:
        # Locked: two moderators hiding at once publish one event between them.
        comment = await self._visible_comment(comment_id, principal, for_update=True)
        if not domain.is_moderator(principal):
            raise forbidden("only MODERATOR, PRODUCT_TEAM or ADMIN hide comments")
        reason = domain.clean_reason(reason)
        event = domain.hide(comment.id, comment.idea_id, comment.hidden, reason, principal.id)
        if event is not None:
            comment.hidden = True
            comment.hidden_reason = event.reason
            comment.hidden_by = event.hidden_by
            comment.hidden_at = utcnow()
            await self.repo.add(comment)
            self.uow.emit(event)
        return public(comment, principal)

    async def flag(self, principal: Principal, comment_id: uuid.UUID, reason: str) -> bool:
        comment = await self._visible_comment(comment_id, principal)
        reason = domain.clean_reason(reason)
        return await self.repo.add_flag(comment.id, principal.id, reason)

    # --- the idea projection (event handlers; the IDEAS stream's ordering: shared/events/catalogue.py) --
    async def idea_proposed(self, event: IdeaProposed) -> None:
        await self.repo.add_idea_if_absent(
            event.idea_id, event.author_id, [str(k) for k in event.visible_to], event.status
        )

    async def idea_status_changed(self, event: IdeaStatusChanged) -> None:
        await self._set_status(event.idea_id, event.to_status)

    async def idea_merged(self, event: IdeaMerged) -> None:
        await self._set_status(event.idea_id, IdeaStatus.MERGED)

    async def _set_status(self, idea_id: uuid.UUID, status: IdeaStatus) -> None:
        idea = await self.repo.idea(idea_id, for_update=True)
        if idea is None:
            raise RetryLater(f"idea {idea_id} not known yet")
        if status != idea.status:
            idea.status = status
            await self.repo.save_idea(idea)
