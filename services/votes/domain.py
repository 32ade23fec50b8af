"""Vote rules as pure functions: plain data in, decisions and events out (no session, no NATS).

- weight: 1 nice to have, 2 important, 3 must have;
- who may vote: the idea must be known to the projection, visible to the caller and in a status
  that accepts votes (OPEN, UNDER_REVIEW, PLANNED);
- withdrawing is allowed in every status but MERGED (a merged idea's votes moved to its target);
- merges: each source vote moves to the target; a voter on both keeps the higher weight.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.auth import Principal
from shared.events.catalogue import (
    IdeaStatus,
    StakeholderKind,
    VoteCast,
    VoteChanged,
    VoteMove,
    VotesMoved,
    VoteWithdrawn,
)
from shared.problems import bad_input, conflict, not_found
from shared.visibility import can_see

MIN_WEIGHT, MAX_WEIGHT = 1, 3
DEFAULT_WEIGHT = 1
ACCEPTING_STATUSES = frozenset({IdeaStatus.OPEN, IdeaStatus.UNDER_REVIEW, IdeaStatus.PLANNED})
# Withdrawing removes nothing on a MERGED idea: its votes moved to the target.
NO_WITHDRAW_STATUSES = frozenset({IdeaStatus.MERGED})
MAX_MINE_IDS = 500
# A votes.moved event lists at most this many moves (~170 bytes each as JSON), so a merge of a
# very popular idea stays far below NATS' 1 MB message limit; most merges need one event.
MAX_MOVES_PER_EVENT = 1000
MAX_MERGE_CHAIN = 64


@dataclass(frozen=True)
class IdeaView:
    """What the votes service knows of an idea (its projection row)."""

    idea_id: uuid.UUID
    status: IdeaStatus
    visible_to: tuple[str, ...]
    author_id: uuid.UUID
    merged_into_id: uuid.UUID | None = None


@dataclass(frozen=True)
class StoredVote:
    voter_id: uuid.UUID
    voter_kind: StakeholderKind
    weight: int
    cast_at: datetime


class MergeCycle(Exception):
    """The merge chain loops: can never be resolved (permanent)."""


# --- casting -----------------------------------------------------------------------------------
def check_weight(weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise bad_input(f"weight must be between {MIN_WEIGHT} and {MAX_WEIGHT}", field="weight")
    return weight


def check_can_vote(idea: IdeaView | None, voter: Principal) -> IdeaView:
    """NOT_FOUND for an unknown or invisible idea (no leak), CONFLICT when it takes no votes."""
    if idea is None or not can_see(voter, idea.visible_to, idea.author_id):
        raise not_found("idea")
    if idea.status not in ACCEPTING_STATUSES:
        raise conflict(f"the idea is {idea.status} and does not accept votes")
    return idea


def check_can_withdraw(idea: IdeaView | None, voter: Principal) -> bool:
    """True when a withdrawal applies; False for a MERGED idea (its votes moved: nothing to
    remove there). Unknown or invisible ideas are NOT_FOUND, as for casting."""
    if idea is None or not can_see(voter, idea.visible_to, idea.author_id):
        raise not_found("idea")
    return idea.status not in NO_WITHDRAW_STATUSES


def cast_outcome(
    idea_id: uuid.UUID,
    voter_id: uuid.UUID,
    kind: StakeholderKind,
    previous_weight: int | None,
    weight: int,
    cast_at: datetime,
    changed_at: datetime,
) -> VoteCast | VoteChanged | None:
    """The event of a cast: a new vote (no previous weight), a changed weight, or nothing when
    the same weight is cast again (idempotent)."""
    if previous_weight is None:
        return VoteCast(idea_id=idea_id, voter_id=voter_id, voter_kind=kind, weight=weight, cast_at=cast_at)
    if previous_weight == weight:
        return None
    return VoteChanged(
        idea_id=idea_id,
        voter_id=voter_id,
        voter_kind=kind,
        old_weight=previous_weight,
        new_weight=weight,
        cast_at=changed_at,
    )


def withdrawn_event(idea_id: uuid.UUID, voter_id: uuid.UUID, kind: StakeholderKind, weight: int) -> VoteWithdrawn:
    return VoteWithdrawn(idea_id=idea_id, voter_id=voter_id, voter_kind=kind, weight=weight)


def check_mine_ids(ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_MINE_IDS:
        raise bad_input(f"at most {MAX_MINE_IDS} idea ids", field="idea_ids")
    return unique


# --- the idea projection -------------------------------------------------------------------------
def final_target(target_id: uuid.UUID, merged_into: Mapping[uuid.UUID, uuid.UUID | None]) -> uuid.UUID:
    """Where votes merged into `target_id` end up: the target itself, or, when the target was
    merged in turn (its merge handled first), the end of that chain."""
    seen = {target_id}
    current = target_id
    while (nxt := merged_into.get(current)) is not None:
        if nxt in seen or len(seen) > MAX_MERGE_CHAIN:
            raise MergeCycle(f"merge chain from {target_id} loops")
        seen.add(nxt)
        current = nxt
    return current


def compute_moves(source_votes: Sequence[StoredVote], target_votes: Mapping[uuid.UUID, StoredVote]) -> list[VoteMove]:
    """Every source vote moves to the target; a voter with a vote on both keeps one vote there,
    with the higher weight (and the target vote's kind: that is how the target counts it)."""
    moves = []
    for vote in sorted(source_votes, key=lambda v: v.voter_id):
        existing = target_votes.get(vote.voter_id)
        old = existing.weight if existing is not None else None
        moves.append(
            VoteMove(
                voter_id=vote.voter_id,
                voter_kind=existing.voter_kind if existing is not None else vote.voter_kind,
                source_weight=vote.weight,
                target_old_weight=old,
                target_new_weight=max(vote.weight, old or 0),
            )
        )
    return moves


def target_writes(moves: Sequence[VoteMove]) -> list[VoteMove]:
    """The moves that change the target (a new vote there, or a higher weight)."""
    return [m for m in moves if m.target_old_weight != m.target_new_weight]


def moved_events(
    source_id: uuid.UUID, target_id: uuid.UUID, moves: Sequence[VoteMove], per_event: int = MAX_MOVES_PER_EVENT
) -> list[VotesMoved]:
    """One votes.moved event for the merge (even with no moves: it tells that the merge is
    done); split only when it would list more than `per_event` moves. Each event stands alone:
    its moves apply independently of the others."""
    chunks = [list(moves[i : i + per_event]) for i in range(0, len(moves), per_event)] or [[]]
    return [VotesMoved(source_id=source_id, target_id=target_id, moves=chunk) for chunk in chunks]
