"""Vote persistence: queries only; the caller's boundary commits.

The cast and withdraw paths are single statements (the hottest write path of the platform):
the idea_state row is read and locked FOR SHARE in the same statement that writes the vote, so
a merge (which locks it FOR UPDATE) can never interleave with a cast on the source."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.votes.domain import NO_WITHDRAW_STATUSES, IdeaView, StoredVote
from services.votes.models import Vote
from shared.events.catalogue import IdeaStatus, StakeholderKind, VoteMove

# One statement: lock the idea's projection row (FOR SHARE: concurrent casts share it, a merge or
# status change waits), then insert the vote or change its weight. `previous_weight` is set from
# the row being replaced (the latest committed version, which ON CONFLICT locks), so it is the
# exact old weight even under concurrent casts; it stays NULL on a fresh insert. The same weight
# again writes nothing (the WHERE), and then `up` is empty while `idea` is not.
# The vote is written whenever the idea is known; the acceptance rule (domain.check_can_vote) is
# applied to the returned idea row and a refusal rolls the transaction back.
CAST_SQL = text(
    """
    WITH idea AS (
        SELECT idea_id, status, visible_to, author_id, merged_into_id
        FROM idea_state WHERE idea_id = :idea_id FOR SHARE
    ), up AS (
        INSERT INTO vote AS v (idea_id, voter_id, weight, voter_kind, cast_at, updated_at)
        SELECT idea.idea_id, CAST(:voter_id AS uuid), CAST(:weight AS smallint), CAST(:voter_kind AS varchar),
               now(), now()
        FROM idea
        ON CONFLICT (idea_id, voter_id) DO UPDATE
            SET previous_weight = v.weight, weight = EXCLUDED.weight, updated_at = EXCLUDED.updated_at
            WHERE v.weight <> EXCLUDED.weight
        RETURNING v.weight, v.previous_weight, v.voter_kind, v.cast_at, v.updated_at
    )
    SELECT idea.status, idea.visible_to, idea.author_id, idea.merged_into_id,
           up.weight, up.previous_weight, up.voter_kind, up.cast_at, up.updated_at
    FROM idea LEFT JOIN up ON true
    """
)

# One statement, like the cast: lock the idea row FOR SHARE and delete the caller's vote unless
# the idea is in a status where withdrawing does not apply (domain.NO_WITHDRAW_STATUSES: MERGED,
# whose votes moved to the target). Visibility is checked on the returned idea row; a refusal
# rolls the delete back.
WITHDRAW_SQL = text(
    """
    WITH idea AS (
        SELECT idea_id, status, visible_to, author_id, merged_into_id
        FROM idea_state WHERE idea_id = :idea_id FOR SHARE
    ), del AS (
        DELETE FROM vote
        WHERE idea_id = (SELECT idea_id FROM idea) AND voter_id = :voter_id
          AND NOT (SELECT status FROM idea) = ANY(CAST(:frozen AS varchar[]))
        RETURNING weight, voter_kind
    )
    SELECT idea.status, idea.visible_to, idea.author_id, idea.merged_into_id, del.weight, del.voter_kind
    FROM idea LEFT JOIN del ON true
    """
)


@dataclass(frozen=True)
class CastResult:
    idea: IdeaView
    # None when the same weight was cast again (nothing written).
    written: WrittenVote | None


@dataclass(frozen=True)
class WrittenVote:
    weight: int
    previous_weight: int | None
    voter_kind: StakeholderKind
    cast_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class WithdrawResult:
    idea: IdeaView
    removed: tuple[int, StakeholderKind] | None  # (weight, kind) of the removed vote


def _idea(idea_id: uuid.UUID, row: object) -> IdeaView:
    return IdeaView(
        idea_id=idea_id,
        status=IdeaStatus(row.status),  # type: ignore[attr-defined]
        visible_to=tuple(row.visible_to),  # type: ignore[attr-defined]
        author_id=row.author_id,  # type: ignore[attr-defined]
        merged_into_id=row.merged_into_id,  # type: ignore[attr-defined]
    )


class VoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- votes ---------------------------------------------------------------------------------
    async def cast(
        self, idea_id: uuid.UUID, voter_id: uuid.UUID, kind: StakeholderKind, weight: int
    ) -> CastResult | None:
        """None when the idea is unknown (nothing written)."""
        row = (
            await self.session.execute(
                CAST_SQL, {"idea_id": idea_id, "voter_id": voter_id, "voter_kind": kind.value, "weight": weight}
            )
        ).first()
        if row is None:
            return None
        written = None
        if row.weight is not None:
            written = WrittenVote(
                row.weight, row.previous_weight, StakeholderKind(row.voter_kind), row.cast_at, row.updated_at
            )
        return CastResult(_idea(idea_id, row), written)

    async def withdraw(self, idea_id: uuid.UUID, voter_id: uuid.UUID) -> WithdrawResult | None:
        """None when the idea is unknown (nothing deleted)."""
        params = {"idea_id": idea_id, "voter_id": voter_id, "frozen": [s.value for s in NO_WITHDRAW_STATUSES]}
        row = (await self.session.execute(WITHDRAW_SQL, params)).first()
        if row is None:
            return None
        removed = (row.weight, StakeholderKind(row.voter_kind)) if row.weight is not None else None
        return WithdrawResult(_idea(idea_id, row), removed)

    async def get(self, idea_id: uuid.UUID, voter_id: uuid.UUID) -> Vote | None:
        result = await self.session.exec(select(Vote).where(Vote.idea_id == idea_id, Vote.voter_id == voter_id))
        return result.first()

    async def mine(self, voter_id: uuid.UUID, idea_ids: Sequence[uuid.UUID]) -> list[Any]:
        """Rows (idea_id, voter_id, weight, cast_at) of the voter's votes among `idea_ids`: one
        statement text whatever the number of ids (an array, not an expanded IN list)."""
        if not idea_ids:
            return []
        rows = await self.session.execute(
            text(
                "SELECT idea_id, voter_id, weight, cast_at FROM vote "
                "WHERE voter_id = :v AND idea_id = ANY(CAST(:ids AS uuid[])) ORDER BY idea_id"
            ),
            {"v": voter_id, "ids": list(idea_ids)},
        )
        return list(rows.all())

    async def votes_on(self, idea_id: uuid.UUID) -> list[StoredVote]:
        rows = await self.session.execute(
            text("SELECT voter_id, voter_kind, weight, cast_at FROM vote WHERE idea_id = :i"), {"i": idea_id}
        )
        return [StoredVote(r.voter_id, StakeholderKind(r.voter_kind), r.weight, r.cast_at) for r in rows]

    async def votes_of_voters_on(self, idea_id: uuid.UUID, voter_ids: Sequence[uuid.UUID]) -> list[StoredVote]:
        if not voter_ids:
            return []
        rows = await self.session.execute(
            text(
                "SELECT voter_id, voter_kind, weight, cast_at FROM vote "
                "WHERE idea_id = :i AND voter_id = ANY(CAST(:v AS uuid[]))"
            ),
            {"i": idea_id, "v": list(voter_ids)},
        )
        return [StoredVote(r.voter_id, StakeholderKind(r.voter_kind), r.weight, r.cast_at) for r in rows]

    async def write_moves(
        self, target_id: uuid.UUID, writes: Sequence[VoteMove], cast_at: dict[uuid.UUID, datetime]
    ) -> None:
        """Put each move's new weight on the target: a new vote keeps the source vote's cast
        time; an existing one keeps its own and takes the higher weight."""
        if not writes:
            return
        await self.session.execute(
            text(
                """
                INSERT INTO vote AS v (idea_id, voter_id, weight, voter_kind, cast_at, updated_at)
                SELECT CAST(:t AS uuid), m.voter_id, m.weight, m.voter_kind, m.cast_at, now()
                FROM unnest(CAST(:voters AS uuid[]), CAST(:weights AS smallint[]), CAST(:kinds AS varchar[]),
                            CAST(:cast_ats AS timestamptz[])) AS m(voter_id, weight, voter_kind, cast_at)
                ON CONFLICT (idea_id, voter_id) DO UPDATE
                    SET previous_weight = v.weight, weight = EXCLUDED.weight, updated_at = EXCLUDED.updated_at
                """
            ),
            {
                "t": target_id,
                "voters": [m.voter_id for m in writes],
                "weights": [m.target_new_weight for m in writes],
                "kinds": [m.voter_kind.value for m in writes],
                "cast_ats": [cast_at[m.voter_id] for m in writes],
            },
        )

    async def delete_votes_on(self, idea_id: uuid.UUID) -> int:
        result = await self.session.execute(text("DELETE FROM vote WHERE idea_id = :i"), {"i": idea_id})
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # --- idea projection -------------------------------------------------------------------------
    async def add_idea(
        self, idea_id: uuid.UUID, status: IdeaStatus, visible_to: Sequence[str], author_id: uuid.UUID
    ) -> bool:
        """The proposal; False when the idea is known already (a later state is never reset)."""
        result = await self.session.execute(
            text(
                "INSERT INTO idea_state (idea_id, status, visible_to, author_id, updated_at) "
                "VALUES (:i, :s, CAST(:v AS varchar[]), :a, now()) ON CONFLICT (idea_id) DO NOTHING"
            ),
            {"i": idea_id, "s": status.value, "v": list(visible_to), "a": author_id},
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def idea_for_update(self, idea_id: uuid.UUID) -> IdeaView | None:
        views = await self.ideas_for_update([idea_id])
        return views.get(idea_id)

    async def ideas_for_update(self, idea_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, IdeaView]:
        """Lock the rows in id order (two merges can never wait on each other in a cycle)."""
        rows = await self.session.execute(
            text(
                "SELECT idea_id, status, visible_to, author_id, merged_into_id FROM idea_state "
                "WHERE idea_id = ANY(CAST(:ids AS uuid[])) ORDER BY idea_id FOR UPDATE"
            ),
            {"ids": sorted(set(idea_ids))},
        )
        return {r.idea_id: _idea(r.idea_id, r) for r in rows}

    async def merged_into(self, idea_id: uuid.UUID) -> tuple[bool, uuid.UUID | None]:
        """(known, merged_into_id) without locking: to follow a merge chain."""
        row = (
            await self.session.execute(text("SELECT merged_into_id FROM idea_state WHERE idea_id = :i"), {"i": idea_id})
        ).first()
        return (row is not None, row.merged_into_id if row is not None else None)

    async def set_status(self, idea_id: uuid.UUID, status: IdeaStatus, merged_into_id: uuid.UUID | None = None) -> None:
        await self.session.execute(
            text(
                "UPDATE idea_state SET status = :s, updated_at = now(), "
                "merged_into_id = COALESCE(CAST(:m AS uuid), merged_into_id) WHERE idea_id = :i"
            ),
            {"i": idea_id, "s": status.value, "m": merged_into_id},
        )
