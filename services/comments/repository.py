"""Comment persistence: queries only; the caller's boundary commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, text, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.comments.models import Comment, IdeaVisibility
from shared.events.catalogue import IdeaStatus


class CommentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the idea projection -------------------------------------------------------------------
    async def idea(self, idea_id: uuid.UUID, for_update: bool = False) -> IdeaVisibility | None:
        return await self.session.get(IdeaVisibility, idea_id, with_for_update=for_update, populate_existing=for_update)

    async def ideas(self, idea_ids: Sequence[uuid.UUID]) -> list[IdeaVisibility]:
        if not idea_ids:
            return []
        result = await self.session.exec(select(IdeaVisibility).where(col(IdeaVisibility.idea_id).in_(list(idea_ids))))
        return list(result.all())

    async def add_idea_if_absent(
        self, idea_id: uuid.UUID, author_id: uuid.UUID, visible_to: Sequence[str], status: IdeaStatus
    ) -> bool:
        """A proposal is a fact that never changes: a second copy changes nothing."""
        row = (
            await self.session.execute(
                text(
                    "INSERT INTO idea_visibility (idea_id, visible_to, author_id, status, updated_at) "
                    "VALUES (:i, :v, :a, :s, :t) ON CONFLICT (idea_id) DO NOTHING RETURNING idea_id"
                ),
                {"i": idea_id, "v": list(visible_to), "a": author_id, "s": str(status), "t": datetime.now(UTC)},
            )
        ).first()
        return row is not None

    async def save_idea(self, idea: IdeaVisibility) -> None:
        idea.updated_at = datetime.now(UTC)
        self.session.add(idea)
        await self.session.flush()

    # --- comments ----------------------------------------------------------------------------------
    async def get(self, comment_id: uuid.UUID, for_update: bool = False) -> Comment | None:
        return await self.session.get(Comment, comment_id, with_for_update=for_update, populate_existing=for_update)

    async def get_with_idea(
        self, comment_id: uuid.UUID, for_update: bool = False
    ) -> tuple[Comment, IdeaVisibility] | None:
        query = (
            select(Comment, IdeaVisibility)
            .join(IdeaVisibility, col(IdeaVisibility.idea_id) == col(Comment.idea_id))
            .where(col(Comment.id) == comment_id)
        )
        if for_update:
            query = query.with_for_update(of=Comment).execution_options(populate_existing=True)  # type: ignore[arg-type]
        row = (await self.session.exec(query)).first()
        return (row[0], row[1]) if row is not None else None

    async def get_many_with_ideas(self, ids: Sequence[uuid.UUID]) -> list[tuple[Comment, IdeaVisibility]]:
        if not ids:
            return []
        query = (
            select(Comment, IdeaVisibility)
            .join(IdeaVisibility, col(IdeaVisibility.idea_id) == col(Comment.idea_id))
            .where(col(Comment.id).in_(list(ids)))
        )
        return [(c, i) for c, i in (await self.session.exec(query)).all()]

    async def add(self, comment: Comment) -> None:
        self.session.add(comment)
        await self.session.flush()

    async def page(self, idea_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[Comment]:
        """Up to `limit` comments of the idea, oldest first, after the keyset position."""
        query = select(Comment).where(col(Comment.idea_id) == idea_id)
        if after is not None:
            query = query.where(tuple_(col(Comment.created_at), col(Comment.id)) > tuple_(*after))
        query = query.order_by(col(Comment.created_at), col(Comment.id)).limit(limit)
        return list((await self.session.exec(query)).all())

    async def count(self, idea_id: uuid.UUID) -> int:
        query = select(func.count()).select_from(Comment).where(col(Comment.idea_id) == idea_id)
        return int((await self.session.exec(query)).one())

    async def first_pages(self, idea_ids: Sequence[uuid.UUID], limit: int) -> list[Comment]:
        """The first `limit` comments of each idea, in ONE query.

        A LATERAL join with LIMIT rather than row_number() over (partition by idea_id): both are
        one query, but the lateral reads only `limit` index entries per idea from
        ix_comment_idea_created, where the window function reads every comment of every idea
        asked for before filtering on the row number."""
        if not idea_ids or limit <= 0:
            return []
        statement = text(
            "SELECT c.* FROM unnest(CAST(:ids AS uuid[])) AS i(idea_id) "
            "CROSS JOIN LATERAL ("
            "  SELECT * FROM comment WHERE comment.idea_id = i.idea_id ORDER BY created_at, id LIMIT :n"
            ") AS c "
            "ORDER BY c.idea_id, c.created_at, c.id"
        ).bindparams(ids=list(idea_ids), n=limit)
        result = await self.session.execute(select(Comment).from_statement(statement))
        return list(result.scalars().all())

    async def counts(self, idea_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Comments per idea (hidden ones included: they keep their place), in ONE query."""
        if not idea_ids:
            return {}
        query = (
            select(col(Comment.idea_id), func.count())
            .where(col(Comment.idea_id).in_(list(idea_ids)))
            .group_by(col(Comment.idea_id))
        )
        return {idea_id: int(n) for idea_id, n in (await self.session.exec(query)).all()}

    # --- flags ---------------------------------------------------------------------------------------
    async def add_flag(self, comment_id: uuid.UUID, flagger_id: uuid.UUID, reason: str) -> bool:
        """True when this is the member's first flag on the comment (then flag_count grows)."""
        inserted = (
            await self.session.execute(
                text(
                    "INSERT INTO comment_flag (comment_id, flagger_id, reason, created_at) "
                    "VALUES (:c, :f, :r, :t) ON CONFLICT (comment_id, flagger_id) DO NOTHING RETURNING comment_id"
                ),
                {"c": comment_id, "f": flagger_id, "r": reason, "t": datetime.now(UTC)},
            )
        ).first()
        if inserted is None:
            return False
        await self.session.execute(
            text("UPDATE comment SET flag_count = flag_count + 1 WHERE id = :c"), {"c": comment_id}
        )
        return True
