"""Idea persistence: queries only; the caller's boundary commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, or_, text, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ideas import domain
from services.ideas.models import Idea, IdeaRevision, IdeaSort
from shared.auth import Principal
from shared.events.catalogue import IdeaStatus, StakeholderKind
from shared.visibility import visible_clause

ENGLISH: Any = literal_column("'english'::regconfig")
# Pages and batches are read as plain rows of the idea table: no ORM identity map or instance
# construction for 20-100 read-only ideas (service.public reads a row like an Idea).
IDEA_TABLE: Any = Idea.__table__  # type: ignore[attr-defined]
SEARCH_VECTOR: Any = literal_column("idea.search_vector")


def visible(viewer: Principal | None) -> ColumnElement[bool]:
    return visible_clause(viewer, col(Idea.visible_to), col(Idea.author_id))


def sort_column(sort: IdeaSort, segment: StakeholderKind | None) -> Any:
    if sort == IdeaSort.TOP:
        return getattr(Idea, domain.weight_column(segment)) if segment else col(Idea.score)
    return {
        IdeaSort.TRENDING: col(Idea.recent_score),
        IdeaSort.NEWEST: col(Idea.created_at),
        IdeaSort.MOST_DISCUSSED: col(Idea.comment_count),
    }[sort]


@dataclass(frozen=True)
class IdeaFilter:
    viewer: Principal | None
    statuses: Sequence[IdeaStatus] | None = None  # None: every status but MERGED
    tag: str | None = None
    search: str | None = None
    segment: StakeholderKind | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out = [visible(self.viewer)]
        if self.statuses:
            out.append(col(Idea.status).in_([s.value for s in self.statuses]))
        else:
            out.append(col(Idea.status) != IdeaStatus.MERGED.value)
        if self.tag is not None:
            out.append(col(Idea.tags).contains([self.tag]))
        if self.search is not None:
            out.append(SEARCH_VECTOR.op("@@")(func.websearch_to_tsquery(ENGLISH, self.search)))
        if self.segment is not None:
            out.append(getattr(Idea, domain.voters_column(self.segment)) > 0)
        return out


class IdeaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- ideas ---------------------------------------------------------------------------
    async def get(self, idea_id: uuid.UUID, *, for_update: bool = False) -> Idea | None:
        if not for_update:
            return await self.session.get(Idea, idea_id)
        query = select(Idea).where(col(Idea.id) == idea_id).with_for_update().execution_options(populate_existing=True)
        return (await self.session.exec(query)).first()

    async def lock_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Idea]:
        """Rows locked FOR UPDATE in id order (the same order everywhere: no deadlocks)."""
        query = (
            select(Idea)
            .where(col(Idea.id).in_(list(ids)))
            .order_by(col(Idea.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {idea.id: idea for idea in (await self.session.exec(query)).all()}

    async def get_many(self, ids: Sequence[uuid.UUID], viewer: Principal | None) -> list[Any]:
        """Rows (see IDEA_TABLE) of the visible ideas among `ids`."""
        if not ids:
            return []
        query = sa_select(IDEA_TABLE).where(col(Idea.id).in_(list(ids)), visible(viewer))
        return list((await self.session.execute(query)).all())

    async def add(self, idea: Idea) -> None:
        self.session.add(idea)
        await self.session.flush()

    async def page(self, flt: IdeaFilter, sort: IdeaSort, after: tuple[Any, uuid.UUID] | None, limit: int) -> list[Any]:
        """Rows (see IDEA_TABLE), best first."""
        key = sort_column(sort, flt.segment)
        query = sa_select(IDEA_TABLE).where(*flt.clauses())
        if after is not None:
            query = query.where(tuple_(key, col(Idea.id)) < tuple_(literal(after[0]), literal(after[1])))
        query = query.order_by(key.desc(), col(Idea.id).desc()).limit(limit)
        return list((await self.session.execute(query)).all())

    async def count(self, flt: IdeaFilter) -> int:
        query = select(func.count()).select_from(Idea).where(*flt.clauses())
        return int((await self.session.exec(query)).one())

    async def similar(
        self, viewer: Principal | None, trigram_text: str, or_query: str | None, limit: int
    ) -> list[Idea]:
        """Visible, non-MERGED ideas whose title is trigram-similar to the text (whole or in part),
        or whose title/body match any of its words; ranked by a blend of both."""
        similarity = func.similarity(col(Idea.title), trigram_text)
        word_similarity = func.word_similarity(trigram_text, col(Idea.title))
        match = or_(col(Idea.title).op("%")(trigram_text), literal(trigram_text).op("<%")(col(Idea.title)))
        rank: Any = 0.5 * similarity + 0.2 * word_similarity
        if or_query is not None:
            tsquery = func.to_tsquery(ENGLISH, or_query)
            match = or_(match, SEARCH_VECTOR.op("@@")(tsquery))
            rank = rank + 0.3 * func.ts_rank(SEARCH_VECTOR, tsquery)
        query = (
            select(Idea)
            .where(visible(viewer), col(Idea.status) != IdeaStatus.MERGED.value, match)
            .order_by(rank.desc(), col(Idea.id).desc())
            .limit(limit)
        )
        return list((await self.session.exec(query)).all())

    # --- revisions -----------------------------------------------------------------------
    async def add_revision(self, revision: IdeaRevision) -> None:
        self.session.add(revision)
        await self.session.flush()

    async def revisions(self, idea_id: uuid.UUID) -> list[IdeaRevision]:
        query = select(IdeaRevision).where(col(IdeaRevision.idea_id) == idea_id).order_by(col(IdeaRevision.version))
        return list((await self.session.exec(query)).all())

    # --- projections ---------------------------------------------------------------------
    async def add_score_day(self, idea_id: uuid.UUID, day: date, delta: int) -> None:
        await self.session.execute(
            text(
                "INSERT INTO idea_score_day (idea_id, day, delta) "
                "SELECT :i, :d, :x WHERE EXISTS (SELECT 1 FROM idea WHERE id = :i) "  # unknown idea: apply_tally says
                "ON CONFLICT (idea_id, day) DO UPDATE SET delta = idea_score_day.delta + EXCLUDED.delta"
            ),
            {"i": idea_id, "d": day, "x": delta},
        )

    async def apply_tally(self, change: domain.IdeaTallyChange, recent: int) -> bool:
        """Add the deltas to the idea's tally columns; False when the idea does not exist."""
        sets = ["voters = voters + :v", "score = score + :w", "recent_score = recent_score + :r"]
        params: dict[str, Any] = {"id": change.idea_id, "v": change.voters, "w": change.weight, "r": recent}
        for i, (kind, (voters, weight)) in enumerate(change.by_kind.items()):
            vc, wc = domain.voters_column(kind), domain.weight_column(kind)  # fixed names, not input
            sets.append(f"{vc} = {vc} + :v{i}")
            sets.append(f"{wc} = {wc} + :w{i}")
            params[f"v{i}"], params[f"w{i}"] = voters, weight
        result = await self.session.execute(
            text(f"UPDATE idea SET {', '.join(sets)} WHERE id = :id RETURNING id"), params
        )
        return result.first() is not None

    async def add_comment(self, idea_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            text("UPDATE idea SET comment_count = comment_count + 1 WHERE id = :id RETURNING id"), {"id": idea_id}
        )
        return result.first() is not None

    async def expire_score_days(self, before: date, limit: int) -> tuple[int, list[uuid.UUID]]:
        """Delete up to `limit` day rows older than `before` and subtract them from recent_score,
        in the caller's transaction. Rows another replica holds are skipped (SKIP LOCKED)."""
        deleted = (
            await self.session.execute(
                text(
                    "WITH expired AS (SELECT idea_id, day FROM idea_score_day WHERE day < :before "
                    "ORDER BY idea_id, day LIMIT :n FOR UPDATE SKIP LOCKED) "
                    "DELETE FROM idea_score_day d USING expired e WHERE d.idea_id = e.idea_id AND d.day = e.day "
                    "RETURNING d.idea_id, d.delta"
                ),
                {"before": before, "n": limit},
            )
        ).all()
        totals: dict[uuid.UUID, int] = {}
        for idea_id, delta in deleted:
            totals[idea_id] = totals.get(idea_id, 0) + delta
        changed = sorted((i for i, t in totals.items() if t != 0), key=lambda i: i.bytes)
        if changed:
            # Lock in id order like the vote handlers do, then subtract in one statement.
            await self.session.execute(
                text("SELECT id FROM idea WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE"),
                {"ids": changed},
            )
            await self.session.execute(
                text(
                    "UPDATE idea SET recent_score = recent_score - v.total "
                    "FROM unnest(CAST(:ids AS uuid[]), CAST(:totals AS integer[])) AS v(id, total) "
                    "WHERE idea.id = v.id"
                ),
                {"ids": changed, "totals": [totals[i] for i in changed]},
            )
        return len(deleted), changed
