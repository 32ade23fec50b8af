"""Relay connections, one generic pair for every list (strawberry names `Connection[Idea]`
IdeaConnection and `Edge[Idea]` IdeaEdge, as the contract does). Built from a service's page
(shared/pagination.py): every item comes with its own cursor, passed through as the edge's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from shared.pagination import MAX_CURSOR_LENGTH, Page
from shared.problems import Problem

T = TypeVar("T")
M = TypeVar("M")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def check_after(after: str | None) -> str | None:
    """The `after` argument as the service will read it (it checks the cursor); one too long to
    be any cursor is refused here, before it makes a URL."""
    if not after:
        return None
    if len(after) > MAX_CURSOR_LENGTH:
        raise Problem("BAD_USER_INPUT", "invalid cursor")
    return after


def connection(page: Page[M], make: Callable[[M], T]) -> Connection[T]:
    edges = [Edge(cursor=cursor, node=make(item)) for cursor, item in zip(page.cursors, page.items, strict=True)]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count or 0,
    )
