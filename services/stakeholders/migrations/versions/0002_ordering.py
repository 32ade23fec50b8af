"""stakeholders: the ordering policy's per-aggregate versions and the indexes of messaging pruning

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import add_messaging_tables_v2, drop_messaging_tables_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_messaging_tables_v2(op)
    # The stakeholder's version as an aggregate: 1 at registration, one more with each event about
    # it (the STAKEHOLDERS stream is VERSIONED).
    op.add_column("stakeholder", sa.Column("event_version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    drop_messaging_tables_v2(op)
    op.drop_column("stakeholder", "event_version")
