"""The one keyset pagination helper and cursor format (shared/pagination.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.pagination import decode_cursor, encode_cursor, keyset_page
from shared.problems import Problem

TYPES = (datetime, uuid.UUID)


def code_of(cursor: str, order: str = "comments") -> str:
    with pytest.raises(Problem) as info:
        decode_cursor(cursor, order, TYPES)
    return info.value.code


def test_cursor_round_trip() -> None:
    at, comment_id = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor("comments", [at, comment_id]), "comments", TYPES) == (at, comment_id)
    assert decode_cursor(encode_cursor("ideas:score", [7, comment_id]), "ideas:score", (int, uuid.UUID)) == (
        7,
        comment_id,
    )


@pytest.mark.parametrize(
    "values",
    [
        ["not a time", str(uuid.uuid4())],
        ["2026-01-02T03:04:05", str(uuid.uuid4())],  # no timezone
        ["2026-01-02T03:04:05+00:00", "not-a-uuid"],
        [1, 2],
        ["2026-01-02T03:04:05+00:00"],
        ["9999-12-31T23:59:59-14:00", str(uuid.uuid4())],  # past datetime's range once in UTC
    ],
)
def test_foreign_cursors_are_bad_user_input(values: list[object]) -> None:
    assert code_of(encode_cursor("comments", values)) == "BAD_USER_INPUT"


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "WzEsMl0", "x" * 2_000, ""])
def test_garbage_is_bad_user_input(cursor: str) -> None:
    assert code_of(cursor) == "BAD_USER_INPUT"


def test_a_cursor_of_another_order_is_refused() -> None:
    cursor = encode_cursor("ideas:score", [3, uuid.uuid4()])
    with pytest.raises(Problem) as info:
        decode_cursor(cursor, "ideas:created_at", TYPES)
    assert info.value.code == "BAD_USER_INPUT" and "another" in info.value.detail


def test_a_page_gives_every_item_its_cursor_and_says_whether_more_follow() -> None:
    rows = [(i, uuid.UUID(int=i)) for i in range(4)]
    page = keyset_page(rows, 3, order="n", position=lambda r: r, item=lambda r: r[0], total_count=None)
    assert page.items == [0, 1, 2] and page.has_next_page
    assert [decode_cursor(c, "n", (int, uuid.UUID)) for c in page.cursors] == rows[:3]
    assert page.end_cursor == page.cursors[-1]
    last = keyset_page(rows[3:], 3, order="n", position=lambda r: r, item=lambda r: r[0], total_count=4)
    assert (last.items, last.has_next_page, last.total_count) == ([3], False, 4)
    empty = keyset_page([], 3, order="n", position=lambda r: r, item=lambda r: r, total_count=0)
    assert (empty.cursors, empty.end_cursor) == ([], None)
