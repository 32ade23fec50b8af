"""Pure unit tests of the idea rules (no database, no NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from devstack.testing import principal
from services.ideas import domain
from shared.events.catalogue import IdeaStatus, StakeholderKind, VoteMove, VotesMoved
from shared.problems import Problem

S = IdeaStatus
ALLOWED = {
    (S.OPEN, S.UNDER_REVIEW),
    (S.OPEN, S.DECLINED),
    (S.OPEN, S.MERGED),
    (S.UNDER_REVIEW, S.PLANNED),
    (S.UNDER_REVIEW, S.DECLINED),
    (S.UNDER_REVIEW, S.OPEN),
    (S.UNDER_REVIEW, S.MERGED),
    (S.PLANNED, S.IN_PROGRESS),
    (S.PLANNED, S.DECLINED),
    (S.IN_PROGRESS, S.SHIPPED),
    (S.IN_PROGRESS, S.PLANNED),
    (S.DECLINED, S.OPEN),
}


def test_transition_table_is_exactly_the_contract() -> None:
    table = {(a, b) for a, targets in domain.TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert domain.TRANSITIONS[S.MERGED] == frozenset() and domain.TRANSITIONS[S.SHIPPED] == frozenset()


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("new", list(S))
def test_check_transition_every_pair(current: IdeaStatus, new: IdeaStatus) -> None:
    if (current, new) in ALLOWED and new != S.MERGED:
        domain.check_transition(current, new)
    else:
        with pytest.raises(Problem) as err:
            domain.check_transition(current, new)
        assert err.value.code == "CONFLICT"


def test_merge_rules() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    domain.check_merge(a, S.OPEN, b, S.PLANNED)
    domain.check_merge(a, S.UNDER_REVIEW, b, S.SHIPPED)
    for src, src_status, tgt, tgt_status in [
        (a, S.OPEN, a, S.OPEN),  # into itself
        (a, S.OPEN, b, S.MERGED),  # into a merged idea
        (a, S.PLANNED, b, S.OPEN),  # source may not become MERGED
        (a, S.MERGED, b, S.OPEN),
        (a, S.DECLINED, b, S.OPEN),
    ]:
        with pytest.raises(Problem) as err:
            domain.check_merge(src, src_status, tgt, tgt_status)
        assert err.value.code == "CONFLICT"


def test_title_body_tags_validation() -> None:
    assert domain.clean_title("  Dark mode  ") == "Dark mode"
    assert domain.clean_title(" " + "x" * 140 + " ") == "x" * 140
    for bad_title in ("", "   ", "x" * 141):
        with pytest.raises(Problem) as err:
            domain.clean_title(bad_title)
        assert err.value.code == "BAD_USER_INPUT"
    assert domain.clean_body("b" * 20_000) == "b" * 20_000
    for bad_body in ("", " \n ", "b" * 20_001):
        with pytest.raises(Problem):
            domain.clean_body(bad_body)
    assert domain.clean_tags([" Mobile ", "mobile", "api-v2", "x" * 40]) == ["mobile", "api-v2", "x" * 40]
    assert domain.clean_tags(None) == []
    assert domain.clean_tags([f"t{i}" for i in range(10)] + ["t0"]) == [f"t{i}" for i in range(10)]
    for bad in ([f"t{i}" for i in range(11)], ["not a tag"], ["under_score"], [""], ["x" * 41], ["é"]):
        with pytest.raises(Problem) as err:
            domain.clean_tags(bad)
        assert err.value.code == "BAD_USER_INPUT"
    K = StakeholderKind
    assert domain.clean_visible_to([K.EMPLOYEE, K.CUSTOMER, K.EMPLOYEE]) == [K.CUSTOMER, K.EMPLOYEE]
    assert domain.clean_note("  ") is None and domain.clean_note(" ok ") == "ok"
    with pytest.raises(Problem):
        domain.clean_note("n" * 2_001)


def test_who_refines_and_triages() -> None:
    """(Who may see: tests/kit/test_visibility.py.)"""
    author = uuid.uuid4()
    customer = principal("CUSTOMER")
    moderator = principal("CUSTOMER", "MODERATOR")
    team = principal("EMPLOYEE", "PRODUCT_TEAM")
    me = principal("CUSTOMER", id=author)
    domain.check_can_refine(me, author, S.OPEN)
    domain.check_can_refine(team, author, S.SHIPPED)
    with pytest.raises(Problem) as err:
        domain.check_can_refine(customer, author, S.OPEN)
    assert err.value.code == "FORBIDDEN"
    with pytest.raises(Problem) as err:
        domain.check_can_refine(me, author, S.MERGED)
    assert err.value.code == "CONFLICT"
    with pytest.raises(Problem) as err:
        domain.check_staff(moderator, "triage")
    assert err.value.code == "FORBIDDEN"


def test_moved_deltas_and_sums() -> None:
    src, tgt = uuid.uuid4(), uuid.uuid4()
    K = StakeholderKind
    event = VotesMoved(
        source_id=src,
        target_id=tgt,
        moves=[
            VoteMove(
                voter_id=uuid.uuid4(),
                voter_kind=K.CUSTOMER,
                source_weight=2,
                target_old_weight=None,
                target_new_weight=2,
            ),
            VoteMove(
                voter_id=uuid.uuid4(), voter_kind=K.SUPPLIER, source_weight=3, target_old_weight=1, target_new_weight=3
            ),
            VoteMove(
                voter_id=uuid.uuid4(), voter_kind=K.CUSTOMER, source_weight=1, target_old_weight=3, target_new_weight=3
            ),
        ],
    )
    changes = {c.idea_id: c for c in domain.sum_deltas(domain.moved_deltas(event))}
    assert (changes[src].voters, changes[src].weight) == (-3, -6)
    assert changes[src].by_kind == {K.CUSTOMER: (-2, -3), K.SUPPLIER: (-1, -3)}
    assert (changes[tgt].voters, changes[tgt].weight) == (1, 4)
    assert changes[tgt].by_kind == {K.CUSTOMER: (1, 2), K.SUPPLIER: (0, 2)}
    assert [c.idea_id for c in domain.sum_deltas(domain.moved_deltas(event))] == sorted([src, tgt])


def test_tally_lists_kinds_with_voters_in_enum_order() -> None:
    counts = {domain.voters_column(k): 0 for k in domain.KINDS} | {domain.weight_column(k): 0 for k in domain.KINDS}
    counts.update(voters_employee=1, weight_employee=3, voters_customer=2, weight_customer=4, weight_partner=5)
    assert domain.tally(counts) == [(StakeholderKind.CUSTOMER, 2, 4), (StakeholderKind.EMPLOYEE, 1, 3)]


def test_trending_window() -> None:
    now = datetime(2026, 3, 10, 23, 59, tzinfo=UTC)
    assert domain.window_start(now) == date(2026, 3, 4)
    assert domain.in_window(date(2026, 3, 4), now) and domain.in_window(date(2026, 3, 10), now)
    assert not domain.in_window(date(2026, 3, 3), now)
    assert not domain.in_window(date(2026, 3, 20), now)
    assert domain.score_day(datetime(2026, 3, 10, 23, 30, tzinfo=UTC) + timedelta(hours=1)) == date(2026, 3, 11)


@pytest.mark.parametrize("clean", [domain.clean_title, domain.clean_body, domain.clean_note])
def test_text_with_nul_or_lone_surrogates_is_bad_input(clean) -> None:  # type: ignore[no-untyped-def]
    for value in ("a\x00b", "a\ud800b"):
        with pytest.raises(Problem) as refused:
            clean(value)
        assert refused.value.code == "BAD_USER_INPUT"
