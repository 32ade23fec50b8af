"""Stakeholder persistence: queries only; the caller's boundary commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import any_, func, literal, text, union_all
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.stakeholders.models import (
    ApiKey,
    IdeaActivity,
    IdeaTags,
    LoginFailure,
    SigningKey,
    Stakeholder,
    TagActivity,
)

# A credit for a stakeholder's activity on an idea, when the idea is known (its proposal seen).
CREDIT_ON_IDEA_SQL = text(
    "WITH idea AS (SELECT idea_id FROM idea_tags WHERE idea_id = :i), credited AS ("
    "  INSERT INTO idea_activity AS a (stakeholder_id, idea_id, activity)"
    "  SELECT CAST(:s AS uuid), idea.idea_id, CAST(:a AS integer) FROM idea"
    "  ON CONFLICT (stakeholder_id, idea_id) DO UPDATE SET activity = a.activity + EXCLUDED.activity"
    ") SELECT EXISTS (SELECT 1 FROM idea) AS known"
)


class StakeholderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, stakeholder_id: uuid.UUID) -> Stakeholder | None:
        return await self.session.get(Stakeholder, stakeholder_id)

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Stakeholder]:
        if not ids:
            return []
        result = await self.session.exec(select(Stakeholder).where(col(Stakeholder.id).in_(list(ids))))
        return list(result.all())

    async def by_email(self, email: str) -> Stakeholder | None:
        result = await self.session.exec(select(Stakeholder).where(Stakeholder.email == email))
        return result.first()

    async def add(self, stakeholder: Stakeholder) -> None:
        self.session.add(stakeholder)
        await self.session.flush()

    async def failures(self, email: str) -> LoginFailure | None:
        return await self.session.get(LoginFailure, email, with_for_update=True)

    async def save_failures(self, row: LoginFailure) -> None:
        self.session.add(row)
        await self.session.flush()

    async def clear_failures(self, email: str) -> None:
        await self.session.execute(text("DELETE FROM login_failure WHERE email = :e"), {"e": email})

    async def experts(self, tag: str, first: int) -> list[Stakeholder]:
        """Stakeholders with the expertise, most active first: their activity on the ideas that
        have the tag now, plus what was credited to the tag before per-idea activity existed."""
        on_ideas = (
            select(col(IdeaActivity.stakeholder_id), col(IdeaActivity.activity))
            .join(IdeaTags, col(IdeaTags.idea_id) == col(IdeaActivity.idea_id))
            .where(col(IdeaTags.tags).contains([tag]))
        )
        before = select(col(TagActivity.stakeholder_id), col(TagActivity.activity)).where(col(TagActivity.tag) == tag)
        credits = union_all(on_ideas, before).subquery()
        totals = (
            sa_select(credits.c.stakeholder_id, func.sum(credits.c.activity).label("activity"))
            .group_by(credits.c.stakeholder_id)
            .subquery()
        )
        query = (
            select(Stakeholder)
            .outerjoin(totals, totals.c.stakeholder_id == col(Stakeholder.id))
            .where(literal(tag) == any_(col(Stakeholder.expertise)))
            .order_by(func.coalesce(totals.c.activity, 0).desc(), col(Stakeholder.id))
            .limit(first)
        )
        return list((await self.session.exec(query)).all())

    async def credit_on_idea(self, stakeholder_id: uuid.UUID, idea_id: uuid.UUID, amount: int) -> bool:
        """Credit `amount` to the stakeholder's activity on the idea, in one statement (a vote's only
        work here); False when the idea's proposal has not been seen yet (nothing written)."""
        row = (await self.session.execute(CREDIT_ON_IDEA_SQL, {"s": stakeholder_id, "i": idea_id, "a": amount})).one()
        return bool(row.known)

    async def set_idea_tags(self, idea_id: uuid.UUID, tags: list[str]) -> None:
        await self.session.execute(
            text(
                "INSERT INTO idea_tags (idea_id, tags) VALUES (:i, :t) "
                "ON CONFLICT (idea_id) DO UPDATE SET tags = EXCLUDED.tags"
            ),
            {"i": idea_id, "t": tags},
        )

    async def update_idea_tags(self, idea_id: uuid.UUID, tags: list[str]) -> bool:
        """False when the idea is not known (nothing written)."""
        result = await self.session.execute(
            text("UPDATE idea_tags SET tags = :t WHERE idea_id = :i RETURNING idea_id"), {"i": idea_id, "t": tags}
        )
        return result.first() is not None


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def signing_keys(self) -> list[SigningKey]:
        result = await self.session.exec(select(SigningKey).order_by(col(SigningKey.created_at).desc()))
        return list(result.all())

    async def add_signing_key(self, key: SigningKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def api_key_by_hash(self, secret_hash: str) -> ApiKey | None:
        result = await self.session.exec(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
        return result.first()

    async def api_key(self, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def api_keys_of(self, owner_id: uuid.UUID) -> list[ApiKey]:
        result = await self.session.exec(
            select(ApiKey).where(ApiKey.owner_id == owner_id).order_by(col(ApiKey.created_at))
        )
        return list(result.all())

    async def add_api_key(self, key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()
