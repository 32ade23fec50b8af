"""What every object type of the schema shares: the resolver's Info, the Node interface, and
the `first` argument's bounds."""

from __future__ import annotations

import strawberry
from strawberry import Info

from gateway.context import GatewayContext
from shared.problems import Problem

GInfo = Info[GatewayContext, None]


@strawberry.interface(description="An object with an opaque global id: node(id:) resolves any of them.")
class Node:
    id: strawberry.ID


def check_first(value: int | None, default: int, maximum: int, name: str = "first") -> int:
    """`first` as asked (null: the default), refused outside 0..maximum."""
    first = default if value is None else value
    if first < 0 or first > maximum:
        raise Problem("BAD_USER_INPUT", f"{name} must be between 0 and {maximum}, got {first}")
    return first


def not_found(what: str) -> Problem:
    return Problem("NOT_FOUND", f"{what} not found")
