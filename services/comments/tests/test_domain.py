"""Pure unit tests of the comment rules (no database, no NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from devstack.testing import principal
from services.comments import domain
from shared.events.catalogue import IdeaStatus
from shared.problems import Problem


def code_of(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(Problem) as info:
        fn(*args)
    return info.value.code


# --- roles (who may see: tests/kit/test_visibility.py) ---------------------------------------------
def test_official_and_moderator_roles() -> None:
    assert [domain.is_official(principal(role=r)) for r in ("MEMBER", "MODERATOR", "PRODUCT_TEAM", "ADMIN")] == [
        False,
        False,
        True,
        True,
    ]
    assert [principal(role=r).is_moderator for r in ("MEMBER", "MODERATOR", "PRODUCT_TEAM", "ADMIN")] == [
        False,
        True,
        True,
        True,
    ]
    assert domain.is_moderator(None) is False


# --- body and reason ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body", ["", "   ", "\n\t \r\n", "x" * 10_001, "a\x00b", "bad \ud800 surrogate"])
def test_bad_bodies_are_bad_user_input(body: str) -> None:
    assert code_of(domain.check_body, body) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "body", ["x", "x" * 10_000, "  padded stays padded \n", "<script>alert(1)</script>", "'; DROP TABLE comment;--"]
)
def test_good_bodies_are_kept_exactly(body: str) -> None:
    assert domain.check_body(body) == body


def test_reasons_are_stripped_and_limited() -> None:
    assert domain.clean_reason("  spam  ") == "spam"
    assert domain.clean_reason("r" * 500) == "r" * 500
    for bad in ("", "   ", "r" * 501, "nul\x00"):
        assert code_of(domain.clean_reason, bad) == "BAD_USER_INPUT"


# --- threads and statuses ----------------------------------------------------------------------------
def test_parent_must_be_on_the_same_idea() -> None:
    idea = uuid.uuid4()
    domain.check_parent(idea, idea)
    assert code_of(domain.check_parent, idea, uuid.uuid4()) == "BAD_USER_INPUT"


def test_only_merged_ideas_refuse_comments() -> None:
    for status in IdeaStatus:
        if status is IdeaStatus.MERGED:
            assert code_of(domain.check_accepts_comments, status) == "CONFLICT"
        else:
            domain.check_accepts_comments(status)  # SHIPPED and DECLINED stay open


# --- hiding ----------------------------------------------------------------------------------------------
def test_hidden_body_reads_empty_except_for_moderators() -> None:
    assert domain.visible_body("text", False, None) == "text"
    assert domain.visible_body("text", True, None) == ""
    assert domain.visible_body("text", True, principal(role="MEMBER")) == ""
    for role in ("MODERATOR", "PRODUCT_TEAM", "ADMIN"):
        assert domain.visible_body("text", True, principal(role=role)) == "text"


def test_hiding_twice_gives_no_second_event() -> None:
    comment, idea, moderator = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = domain.hide(comment, idea, False, "spam", moderator)
    assert event is not None
    assert (event.comment_id, event.idea_id, event.reason, event.hidden_by) == (comment, idea, "spam", moderator)
    assert domain.hide(comment, idea, True, "again", moderator) is None


def test_comment_added_event_carries_the_comment() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    now = datetime.now(UTC)
    event = domain.comment_added(ids[0], ids[1], ids[2], ids[3], True, now)
    assert (event.comment_id, event.idea_id, event.author_id, event.parent_id) == tuple(ids)
    assert event.official is True and event.created_at == now
