"""Vote use cases. Services write and flush; the boundary (request dependency or consumer
runner) commits, so a vote and its event are committed together or not at all."""

from __future__ import annotations

import uuid
from typing import Any

from services.votes import domain
from services.votes.models import VotePublic
from services.votes.repository import VoteRepository
from shared.auth import Principal
from shared.events.catalogue import IdeaMerged, IdeaProposed, IdeaStatus, IdeaStatusChanged
from shared.events.failures import PermanentError, RetryLater
from shared.logs import get_logger
from shared.uow import UnitOfWork

log = get_logger("votes")


def public(vote: Any) -> VotePublic:
    """The public view of a Vote, or of a row with its columns."""
    return VotePublic(idea_id=vote.idea_id, voter_id=vote.voter_id, weight=vote.weight, cast_at=vote.cast_at)


class VoteService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.repo = VoteRepository(uow.session)

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
            self.uow.emit(event)
        return VotePublic(idea_id=idea_id, voter_id=principal.id, weight=written.weight, cast_at=written.cast_at)

    async def withdraw(self, principal: Principal, idea_id: uuid.UUID) -> bool:
        result = await self.repo.withdraw(idea_id, principal.id)
        domain.check_can_withdraw(result.idea if result else None, principal)
        assert result is not None
        if result.removed is None:
            return False
        weight, kind = result.removed
        self.uow.emit(domain.withdrawn_event(idea_id, principal.id, kind, weight))
        return True

    async def mine(self, principal: Principal, idea_ids: list[uuid.UUID]) -> list[VotePublic]:
        return [public(v) for v in await self.repo.mine(principal.id, domain.check_mine_ids(idea_ids))]

    # --- the idea projection (event handlers; the IDEAS stream's ordering: shared/events/catalogue.py) --
    async def idea_proposed(self, event: IdeaProposed) -> None:
        await self.repo.add_idea(event.idea_id, event.status, [k.value for k in event.visible_to], event.author_id)

    async def idea_status_changed(self, event: IdeaStatusChanged) -> None:
        idea = await self.repo.idea_for_update(event.idea_id)
        if idea is None:
            raise RetryLater(f"idea {event.idea_id} not known yet")
        if event.to_status != idea.status:
            await self.repo.set_status(event.idea_id, event.to_status)

    async def idea_merged(self, event: IdeaMerged) -> None:
        """Mark the source MERGED and move its votes to the target, in the consumer's
        transaction (with the inbox row). Both idea rows are locked FOR UPDATE first: a cast on
        either waits, and a cast on the source that was in flight is committed before the move
        reads the source's votes (and is moved with them)."""
        source_id = event.idea_id
        target_id = await self._final_target(event.target_id)
        if target_id == source_id:
            raise PermanentError(f"merging {source_id} into {event.target_id} leads back to itself")
        ideas = await self.repo.ideas_for_update([source_id, target_id])
        source, target = ideas.get(source_id), ideas.get(target_id)
        if source is None:
            raise RetryLater(f"idea {source_id} not known yet")
        if target is None or target.merged_into_id is not None:
            raise RetryLater(f"merge target {target_id} not known yet (or merged meanwhile)")
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
            self.uow.emit(moved)
        log.info("votes_moved", source_id=str(source_id), target_id=str(target_id), moves=len(moves))

    async def _final_target(self, target_id: uuid.UUID) -> uuid.UUID:
        """The target, or the end of its merge chain when its own merge was handled first."""
        chain: dict[uuid.UUID, uuid.UUID | None] = {}
        current: uuid.UUID | None = target_id
        while current is not None and current not in chain and len(chain) <= domain.MAX_MERGE_CHAIN:
            known, merged_into = await self.repo.merged_into(current)
            if not known:
                raise RetryLater(f"merge target {current} not known yet")
            chain[current] = merged_into
            current = merged_into
        try:
            return domain.final_target(target_id, chain)
        except domain.MergeCycle as exc:
            raise PermanentError(str(exc)) from exc
