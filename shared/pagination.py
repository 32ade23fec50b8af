"""Response shapes and keyset cursors shared by the services' list endpoints."""

from __future__ import annotations

import base64
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from shared.problems import bad_input

T = TypeVar("T")

MAX_PAGE_SIZE = 100


class Items(BaseModel, Generic[T]):
    items: list[T]


class Page(BaseModel, Generic[T]):
    items: list[T]
    # None when the caller said it does not need it (counting can cost more than the page).
    total_count: int | None
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(values: list[Any]) -> str:
    """Opaque cursor for a keyset position (the sort key values of the last row)."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise bad_input("invalid cursor") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise bad_input("invalid cursor")
    return values


def check_page_size(first: int) -> int:
    if first < 0 or first > MAX_PAGE_SIZE:
        raise bad_input(f"first must be between 0 and {MAX_PAGE_SIZE}")
    return first
