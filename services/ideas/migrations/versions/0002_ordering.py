"""ideas: the ordering policy's per-aggregate versions and the indexes of messaging pruning

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
    # The idea's version as an aggregate: 1 at its proposal, one more with each event about it
    # (the IDEAS stream is VERSIONED). Ideas from before count from their current revision.
    op.add_column("idea", sa.Column("event_version", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE idea SET event_version = version")


def downgrade() -> None:
    drop_messaging_tables_v2(op)
    op.drop_column("idea", "event_version")
