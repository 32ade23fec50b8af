"""What the query asked for, so resolvers can skip upstream work nobody will see (and fetch
early what they will)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField


def _fields(selections: Iterable[Any]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def selected_under(info: Info[Any, Any], *path: str) -> set[str]:
    """The field names selected below the current field at `path` (fragments included):
    `selected_under(info, "edges", "node")` on a connection field names the nodes' fields."""
    level = [field for selected in info.selected_fields for field in _fields(selected.selections)]
    for name in path:
        level = [child for field in level if field.name == name for child in _fields(field.selections)]
    return {field.name for field in level}


def selects(info: Info[Any, Any], field: str) -> bool:
    """True when the current field's selection (fragments included) names `field`."""
    return field in selected_under(info)
