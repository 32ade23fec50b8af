"""Pure unit tests of the vote rules (no database, no NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from devstack.testing import principal
from services.votes import domain
from services.votes.domain import IdeaView, StoredVote
from shared.auth import Principal
from shared.events.catalogue import IdeaStatus, StakeholderKind, VoteCast, VoteChanged
from shared.problems import Problem

S = IdeaStatus
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def idea(status: IdeaStatus = S.OPEN, visible_to: tuple[str, ...] = (), author: uuid.UUID | None = None) -> IdeaView:
    return IdeaView(uuid.uuid4(), status, visible_to, author or uuid.uuid4())


def caller(kind: str = "CUSTOMER", role: str = "MEMBER", id_: uuid.UUID | None = None) -> Principal:
    return principal(kind, role, id_)


@pytest.mark.parametrize("weight", [1, 2, 3])
def test_weights_one_to_three_are_accepted(weight: int) -> None:
    assert domain.check_weight(weight) == weight


@pytest.mark.parametrize("weight", [0, 4, -1, 100, True])
def test_other_weights_are_bad_input(weight: int) -> None:
    with pytest.raises(Problem) as exc:
        domain.check_weight(weight)
    assert exc.value.code == "BAD_USER_INPUT" and exc.value.extra["field"] == "weight"


@pytest.mark.parametrize("status", [S.OPEN, S.UNDER_REVIEW, S.PLANNED])
def test_open_ideas_accept_votes(status: IdeaStatus) -> None:
    view = idea(status)
    assert domain.check_can_vote(view, caller()) is view


@pytest.mark.parametrize("status", [S.IN_PROGRESS, S.SHIPPED, S.DECLINED, S.MERGED])
def test_closed_ideas_refuse_votes_with_conflict(status: IdeaStatus) -> None:
    with pytest.raises(Problem) as exc:
        domain.check_can_vote(idea(status), caller())
    assert exc.value.code == "CONFLICT"


def test_unknown_idea_is_not_found() -> None:
    with pytest.raises(Problem) as exc:
        domain.check_can_vote(None, caller())
    assert exc.value.code == "NOT_FOUND"
    with pytest.raises(Problem) as exc:
        domain.check_can_withdraw(None, caller())
    assert exc.value.code == "NOT_FOUND"


def test_votes_follow_the_visibility_rule() -> None:
    """(The rule itself: tests/kit/test_visibility.py.)"""
    author = uuid.uuid4()
    supplier_only = idea(visible_to=("SUPPLIER",), author=author)
    assert domain.check_can_vote(supplier_only, caller("SUPPLIER")) is supplier_only
    assert domain.check_can_vote(supplier_only, caller("CUSTOMER", id_=author)) is supplier_only
    with pytest.raises(Problem) as exc:
        domain.check_can_vote(supplier_only, caller("CUSTOMER", "MODERATOR"))
    assert exc.value.code == "NOT_FOUND"


def test_invisible_idea_is_not_found_even_when_closed() -> None:
    """No leak: the caller learns nothing about an idea it may not see, not even its status."""
    with pytest.raises(Problem) as exc:
        domain.check_can_vote(idea(S.SHIPPED, visible_to=("SUPPLIER",)), caller("CUSTOMER"))
    assert exc.value.code == "NOT_FOUND"


def test_withdraw_applies_in_every_status_but_merged() -> None:
    for status in S:
        assert domain.check_can_withdraw(idea(status), caller()) is (status != S.MERGED)
    with pytest.raises(Problem) as exc:
        domain.check_can_withdraw(idea(visible_to=("PARTNER",)), caller("CUSTOMER"))
    assert exc.value.code == "NOT_FOUND"


def test_cast_outcome_new_changed_same() -> None:
    i, v, k = uuid.uuid4(), uuid.uuid4(), StakeholderKind.PARTNER
    later = NOW.replace(hour=5)
    new = domain.cast_outcome(i, v, k, None, 2, NOW, NOW)
    assert new == VoteCast(idea_id=i, voter_id=v, voter_kind=k, weight=2, cast_at=NOW)
    changed = domain.cast_outcome(i, v, k, 2, 3, NOW, later)
    assert changed == VoteChanged(idea_id=i, voter_id=v, voter_kind=k, old_weight=2, new_weight=3, cast_at=later)
    assert domain.cast_outcome(i, v, k, 3, 3, NOW, later) is None


def test_mine_ids_are_deduplicated_and_capped() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert domain.check_mine_ids([a, b, a]) == [a, b]
    with pytest.raises(Problem) as exc:
        domain.check_mine_ids([uuid.uuid4() for _ in range(domain.MAX_MINE_IDS + 1)])
    assert exc.value.code == "BAD_USER_INPUT"


def vote(voter: uuid.UUID, weight: int, kind: StakeholderKind = StakeholderKind.CUSTOMER) -> StoredVote:
    return StoredVote(voter, kind, weight, NOW)


def test_merge_moves_keep_the_higher_weight() -> None:
    a, b, c, d = sorted(uuid.uuid4() for _ in range(4))
    source = [vote(c, 2), vote(a, 1), vote(b, 3, StakeholderKind.SUPPLIER)]
    target = {a: vote(a, 3), b: vote(b, 1, StakeholderKind.SUPPLIER), d: vote(d, 2)}
    moves = domain.compute_moves(source, target)
    assert [(m.voter_id, m.source_weight, m.target_old_weight, m.target_new_weight) for m in moves] == [
        (a, 1, 3, 3),  # the target's higher weight stays
        (b, 3, 1, 3),  # the source's higher weight wins
        (c, 2, None, 2),  # no vote on the target: moved as is
    ]
    assert [m.voter_kind for m in moves] == [
        StakeholderKind.CUSTOMER,
        StakeholderKind.SUPPLIER,
        StakeholderKind.CUSTOMER,
    ]
    # Only the moves that change the target are written there.
    assert [m.voter_id for m in domain.target_writes(moves)] == [b, c]


def test_merge_moves_of_an_idea_without_votes() -> None:
    assert domain.compute_moves([], {}) == []
    events = domain.moved_events(uuid.uuid4(), uuid.uuid4(), [])
    assert len(events) == 1 and events[0].moves == []


def test_equal_weights_on_both_change_nothing_on_the_target() -> None:
    a = uuid.uuid4()
    (move,) = domain.compute_moves([vote(a, 2)], {a: vote(a, 2)})
    assert (move.target_old_weight, move.target_new_weight) == (2, 2)
    assert domain.target_writes([move]) == []


def test_moved_events_split_only_past_the_limit() -> None:
    moves = domain.compute_moves([vote(uuid.uuid4(), 1) for _ in range(5)], {})
    s, t = uuid.uuid4(), uuid.uuid4()
    assert [len(e.moves) for e in domain.moved_events(s, t, moves)] == [5]
    split = domain.moved_events(s, t, moves, per_event=2)
    assert [len(e.moves) for e in split] == [2, 2, 1]
    assert [m for e in split for m in e.moves] == moves
    assert all(e.source_id == s and e.target_id == t for e in split)


def test_final_target_follows_the_merge_chain() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert domain.final_target(a, {a: None}) == a
    assert domain.final_target(a, {a: b, b: c, c: None}) == c
    with pytest.raises(domain.MergeCycle):
        domain.final_target(a, {a: b, b: a})
