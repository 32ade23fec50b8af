"""What the query asked for, so resolvers can skip upstream work nobody will see."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField


def _names(selections: Iterable[Any]) -> Iterable[str]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection.name
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _names(selection.selections)


def selects(info: Info[Any, Any], field: str) -> bool:
    """True when the current field's selection (fragments included) names `field`."""
    return any(field in _names(selected.selections) for selected in info.selected_fields)
