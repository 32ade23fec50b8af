"""The visibility rule, in both of its forms: the Python predicate and its SQL clause answer the
same for every viewer, on real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import ARRAY, Column, MetaData, String, Table, select, text
from sqlalchemy.dialects.postgresql import UUID

from devstack.testing import Infra, migrated_database, principal
from shared.auth import Principal
from shared.db import create_engine
from shared.settings import ServiceSettings
from shared.visibility import can_see, visible_clause

AUTHOR = uuid.uuid4()
KINDS = ("CUSTOMER", "SUPPLIER", "PARTNER", "EMPLOYEE")
ROLES = ("MEMBER", "MODERATOR", "PRODUCT_TEAM", "ADMIN")


def test_public_idea_is_visible_to_everyone_including_anonymous() -> None:
    assert can_see(None, [], AUTHOR)
    assert all(can_see(principal(kind, role), [], AUTHOR) for kind in KINDS for role in ROLES)


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        (None, False),
        (principal("CUSTOMER"), False),
        (principal("CUSTOMER", "MODERATOR"), False),  # moderating gives no extra visibility
        (principal("SUPPLIER"), True),
        (principal("CUSTOMER", id=AUTHOR), True),  # the author, whatever their kind
        (principal("CUSTOMER", "PRODUCT_TEAM"), True),
        (principal("PARTNER", "ADMIN"), True),
    ],
)
def test_restricted_idea_visibility_matrix(who: Principal | None, sees: bool) -> None:
    assert can_see(who, ["SUPPLIER"], AUTHOR) is sees


async def test_the_sql_clause_answers_like_the_predicate(infra: Infra) -> None:
    """Every viewer (anonymous, each kind x role, the author) against ideas restricted to every
    subset of kinds: the rows the clause selects are exactly those the predicate accepts."""
    url = await migrated_database(infra, "votes", "kit_visibility")
    table = Table(
        "visibility_probe",
        MetaData(),
        Column("id", String, primary_key=True),
        Column("visible_to", ARRAY(String), nullable=False),
        Column("author_id", UUID(as_uuid=True), nullable=False),
    )
    subsets = [[k for i, k in enumerate(KINDS) if mask >> i & 1] for mask in range(16)]
    rows = [{"id": f"r{i}", "visible_to": kinds, "author_id": AUTHOR} for i, kinds in enumerate(subsets)]
    viewers: list[Principal | None] = [None, principal("CUSTOMER", id=AUTHOR)]
    viewers += [principal(kind, role) for kind in KINDS for role in ROLES]
    engine = create_engine(ServiceSettings(service_name="kit", database_url=url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS visibility_probe"))
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), rows)
            for viewer in viewers:
                query = select(table.c.id).where(visible_clause(viewer, table.c.visible_to, table.c.author_id))
                selected = set((await conn.execute(query)).scalars())
                expected = {r["id"] for r in rows if can_see(viewer, r["visible_to"], r["author_id"])}
                assert selected == expected, viewer
    finally:
        await engine.dispose()
