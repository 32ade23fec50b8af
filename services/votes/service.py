"""Vote use cases. Services write and flush; the boundary (request dependency or consumer
runner) commits, so a vote and its event are committed together or not at all."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.votes import domain
from services.votes.models import VotePublic
from services.votes.repository import VoteRepository
from shared.auth import Principal
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatus, IdeaStatusChanged
from shared.events.envelope import new_event
from shared.logs import get_logger
from shared.outbox import add_event

SOURCE = "votes"
log = get_logger("votes")


class IdeaNotYetKnown(Exception):
    """An event about an idea whose proposal has not been handled yet: retried later (nak)."""


def public(vote: Any) -> VotePublic:
    """The public view of a Vote, or of a row with its columns."""
    return VotePublic(idea_id=vote.idea_id, voter_id=vote.voter_id, weight=vote.weight, cast_at=vote.cast_at)


class VoteService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = VoteRepository(session)

    # --- HTTP use cases ----------------------------------------------------------------------------
    async def cast(self, principal: Principal, idea_id: uuid.UUID, weight: int) -> VotePublic:
        """One statement (lock idea row + upsert) and at most one outbox row. A refusal raises,
        and the request boundary rolls back what the statement wrote."""
        weight = domain.check_weight(weight)
        result = await self.repo.cast(idea_id, principal.id, principal.kind, weight)
        domain.check_can_vote(result.idea if result else None, principal)
        assert result is not None
        written = result.written
        if written is None:
            # The same weight again: nothing changed, no event. The upsert locked the row.
            vote = await self.repo.get(idea_id, principal.id)
            assert vote is not None
            return public(vote)
        event = domain.cast_outcome(
            idea_id,
            principal.id,
            written.voter_kind,
            written.previous_weight,
            written.weight,
            written.cast_at,
            written.updated_at,
        )
        if event is not None:
            await add_event(self.session, new_event(event, source=SOURCE, subject_id=idea_id))
        return VotePublic(idea_id=idea_id, voter_id=principal.id, weight=written.weight, cast_at=written.cast_at)

    async def withdraw(self, principal: Principal, idea_id: uuid.UUID) -> bool:
        result = await self.repo.withdraw(idea_id, principal.id)
        domain.check_can_withdraw(result.idea if result else None, principal)
        assert result is not None
        if result.removed is None:
            return False
        weight, kind = result.removed
        event = domain.withdrawn_event(idea_id, principal.id, kind, weight)
        await add_event(self.session, new_event(event, source=SOURCE, subject_id=idea_id))
        return True

    async def mine(self, principal: Principal, idea_ids: list[uuid.UUID]) -> list[VotePublic]:
        return [public(v) for v in await self.repo.mine(principal.id, domain.check_mine_ids(idea_ids))]

    # --- the idea projection (event handlers) --------------------------------------------------------
    async def idea_proposed(self, event: IdeaProposed) -> None:
        await self.repo.add_idea(event.idea_id, event.status, [k.value for k in event.visible_to], event.author_id)

    async def idea_status_changed(self, event: IdeaStatusChanged) -> None:
        idea = await self.repo.idea_for_update(event.idea_id)
        if idea is None:
            raise IdeaNotYetKnown(str(event.idea_id))
        status = domain.next_status(idea.status, event.from_status, event.to_status)  # may raise OutOfOrder
        if status != idea.status:
            await self.repo.set_status(event.idea_id, status)

    async def idea_merged(self, event: IdeaMerged) -> None:
        """Mark the source MERGED and move its votes to the target, in the consumer's
        transaction (with the inbox row). Both idea rows are locked FOR UPDATE first: a cast on
        either waits, and a cast on the source that was in flight is committed before the move
        reads the source's votes (and is moved with them)."""
        source_id = event.idea_id
        target_id = await self._final_target(event.target_id)
        if target_id == source_id:
            raise domain.MergeCycle(f"merging {source_id} into {event.target_id} leads back to itself")
        ideas = await self.repo.ideas_for_update([source_id, target_id])
        source, target = ideas.get(source_id), ideas.get(target_id)
        if source is None:
            raise IdeaNotYetKnown(str(source_id))
        if target is None or target.merged_into_id is not None:
            raise IdeaNotYetKnown(f"{target_id} (or it was merged meanwhile)")
        if source.merged_into_id is not None:
            log.warning("merge_already_applied", source_id=str(source_id), target_id=str(source.merged_into_id))
            return
        await self.repo.set_status(source_id, IdeaStatus.MERGED, merged_into_id=event.target_id)
        source_votes = await self.repo.votes_on(source_id)
        target_votes = await self.repo.votes_of_voters_on(target_id, [v.voter_id for v in source_votes])
        moves = domain.compute_moves(source_votes, {v.voter_id: v for v in target_votes})
        await self.repo.write_moves(
            target_id, domain.target_writes(moves), {v.voter_id: v.cast_at for v in source_votes}
        )
        await self.repo.delete_votes_on(source_id)
        for moved in domain.moved_events(source_id, target_id, moves):
            await add_event(self.session, new_event(moved, source=SOURCE, subject_id=source_id))
        log.info("votes_moved", source_id=str(source_id), target_id=str(target_id), moves=len(moves))

    async def _final_target(self, target_id: uuid.UUID) -> uuid.UUID:
        """The target, or the end of its merge chain when its own merge was handled first."""
        chain: dict[uuid.UUID, uuid.UUID | None] = {}
        current: uuid.UUID | None = target_id
        while current is not None and current not in chain and len(chain) <= domain.MAX_MERGE_CHAIN:
            known, merged_into = await self.repo.merged_into(current)
            if not known:
                raise IdeaNotYetKnown(str(current))
            chain[current] = merged_into
            current = merged_into
        return domain.final_target(target_id, chain)
