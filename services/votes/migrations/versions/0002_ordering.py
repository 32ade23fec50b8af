"""votes: the ordering policy's per-aggregate versions and the indexes of messaging pruning

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

from shared.migrations import add_messaging_tables_v2, drop_messaging_tables_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_messaging_tables_v2(op)


def downgrade() -> None:
    drop_messaging_tables_v2(op)
