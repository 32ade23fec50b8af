"""Lists, the same way everywhere: response shapes and THE keyset pagination helper.

A list endpoint fetches `first + 1` rows after the caller's position, in its order, and hands
them to `keyset_page`, which cuts the page, tells whether there is a next one, and gives every
item its own cursor (the gateway passes them through as the connection's edge cursors).

One cursor format: base64url of the JSON array `[order, *position]` -- the name of the list's
order (a cursor of another order is refused) and the sort key values of the row (integers, text,
UUIDs as text, times as ISO 8601 with their offset). `decode_cursor` checks it against the
expected order and value types; anything else is BAD_USER_INPUT "invalid cursor"."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from shared.problems import bad_input

T = TypeVar("T")
R = TypeVar("R")

MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 1_000


class Items(BaseModel, Generic[T]):
    items: list[T]


class Page(BaseModel, Generic[T]):
    items: list[T]
    # Each item's own position, in the same order (`end_cursor` is the last one's).
    cursors: list[str]
    # None when the caller said it does not need it (counting can cost more than the page).
    total_count: int | None
    has_next_page: bool
    end_cursor: str | None


def check_page_size(first: int) -> int:
    if first < 0 or first > MAX_PAGE_SIZE:
        raise bad_input(f"first must be between 0 and {MAX_PAGE_SIZE}", field="first")
    return first


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(order: str, position: Sequence[object]) -> str:
    raw = orjson.dumps([order, *(_json_value(v) for v in position)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _typed(value: object, kind: type) -> object:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError("not a time")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a time without its offset")
        return parsed.astimezone(UTC)
    if kind is uuid.UUID:
        if not isinstance(value, str):
            raise ValueError("not a UUID")
        return uuid.UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not an integer")
        return value
    if not isinstance(value, kind):
        raise ValueError(f"not a {kind.__name__}")
    return value


def decode_cursor(cursor: str, order: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The position in a cursor of `order`, each value of its type (BAD_USER_INPUT otherwise)."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        values = orjson.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not isinstance(values, list) or len(values) != len(types) + 1:
            raise ValueError("not a cursor")
        if values[0] != order:
            raise bad_input("the cursor belongs to another list or order", field="after")
        return tuple(_typed(v, kind) for v, kind in zip(values[1:], types, strict=True))
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise bad_input("invalid cursor", field="after") from exc


def keyset_page(
    rows: Sequence[R],
    first: int,
    *,
    order: str,
    position: Callable[[R], Sequence[object]],
    item: Callable[[R], T],
    total_count: int | None,
) -> Page[T]:
    """The page of `rows` (fetched as `first + 1` rows after the caller's position)."""
    shown = rows[:first]
    cursors = [encode_cursor(order, position(row)) for row in shown]
    return Page(
        items=[item(row) for row in shown],
        cursors=cursors,
        total_count=total_count,
        has_next_page=len(rows) > first,
        end_cursor=cursors[-1] if cursors else None,
    )
