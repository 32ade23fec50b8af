"""The contract's visibility rule for an idea and everything on it, written once: `visibleTo`
empty = every stakeholder and anonymous readers; otherwise only those kinds, plus the idea's
author, PRODUCT_TEAM and ADMIN. An invisible idea behaves exactly like a missing one.

Two forms with one signature: `can_see` over values (Python), `visible_clause` over columns
(SQL, for queries that filter many ideas at once). Every service, the gateway, the tests and
the bench import these."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, any_, func, literal, or_, true

from shared.auth import Principal


def can_see(viewer: Principal | None, visible_to: Collection[str], author_id: uuid.UUID) -> bool:
    if not visible_to:
        return True
    if viewer is None:
        return False
    return viewer.is_staff or viewer.id == author_id or viewer.kind in visible_to


def visible_clause(viewer: Principal | None, visible_to: Any, author_id: Any) -> ColumnElement[bool]:
    """`can_see` as a SQL condition on the columns `visible_to` (an array of kind names) and
    `author_id` of the table being filtered."""
    public = func.cardinality(visible_to) == 0
    if viewer is None:
        return public
    if viewer.is_staff:
        return true()
    return or_(public, literal(viewer.kind.value) == any_(visible_to), author_id == viewer.id)
