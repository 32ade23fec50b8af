"""The contract's visibility rule for an idea and everything on it (one place for every service):
`visibleTo` empty = every stakeholder and anonymous readers; otherwise only those kinds, plus
the idea's author, PRODUCT_TEAM and ADMIN. An invisible idea behaves exactly like a missing one."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Protocol

STAFF_ROLES = frozenset({"PRODUCT_TEAM", "ADMIN"})


class Viewer(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def role(self) -> str: ...


def idea_visible(visible_to: Collection[str], author_id: uuid.UUID, viewer: Viewer | None) -> bool:
    if not visible_to:
        return True
    if viewer is None:
        return False
    return viewer.role in STAFF_ROLES or viewer.id == author_id or viewer.kind in visible_to
