"""Stakeholder persistence: queries only; the caller's boundary commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import any_, func, literal, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.stakeholders.models import ApiKey, LoginFailure, SigningKey, Stakeholder, TagActivity

# Activity per (stakeholder, tag): one upsert for all of a credit's tags (DISTINCT: an upsert may
# touch a row once per statement).
_CREDIT_UPSERT = """
    INSERT INTO tag_activity AS ta (stakeholder_id, tag, activity)
    SELECT DISTINCT CAST(:s AS uuid), t, CAST(:a AS integer) FROM {source}
    ON CONFLICT (stakeholder_id, tag) DO UPDATE SET activity = ta.activity + EXCLUDED.activity
"""
CREDIT_SQL = text(_CREDIT_UPSERT.format(source="unnest(CAST(:tags AS varchar[])) AS t"))
CREDIT_ON_IDEA_SQL = text(
    "WITH idea AS (SELECT tags FROM idea_tags WHERE idea_id = :i), credited AS ("
    + _CREDIT_UPSERT.format(source="idea, unnest(idea.tags) AS t")
    + ") SELECT EXISTS (SELECT 1 FROM idea) AS known"
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
        activity = func.coalesce(TagActivity.activity, 0)
        query = (
            select(Stakeholder)
            .outerjoin(
                TagActivity,
                (col(TagActivity.stakeholder_id) == col(Stakeholder.id)) & (col(TagActivity.tag) == tag),
            )
            .where(literal(tag) == any_(col(Stakeholder.expertise)))
            .order_by(activity.desc(), col(Stakeholder.id))
            .limit(first)
        )
        return list((await self.session.exec(query)).all())

    async def credit(self, stakeholder_id: uuid.UUID, tags: Sequence[str], amount: int) -> None:
        await self.session.execute(CREDIT_SQL, {"s": stakeholder_id, "tags": list(tags), "a": amount})

    async def credit_on_idea(self, stakeholder_id: uuid.UUID, idea_id: uuid.UUID, amount: int) -> bool:
        """Credit `amount` to each of the idea's tags in one statement (a vote's only work here);
        False when the idea's proposal has not been seen yet (nothing written)."""
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
