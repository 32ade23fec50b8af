"""votes: one vote per (idea, stakeholder); the idea-state projection

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrations import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KINDS = "('CUSTOMER','SUPPLIER','PARTNER','EMPLOYEE')"
STATUSES = "('OPEN','UNDER_REVIEW','PLANNED','IN_PROGRESS','SHIPPED','DECLINED','MERGED')"


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.create_table(
        "vote",
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("voter_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("weight", sa.SmallInteger(), nullable=False),
        # The weight before the last change (NULL: never changed); lets one upsert statement
        # report the old weight exactly.
        sa.Column("previous_weight", sa.SmallInteger(), nullable=True),
        sa.Column("voter_kind", sa.String(), nullable=False),
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idea_id", "voter_id", name="pk_vote"),
        sa.CheckConstraint("weight BETWEEN 1 AND 3", name="ck_vote_weight"),
        sa.CheckConstraint("previous_weight BETWEEN 1 AND 3", name="ck_vote_previous_weight"),
        sa.CheckConstraint(f"voter_kind IN {KINDS}", name="ck_vote_voter_kind"),
    )
    op.create_index("ix_vote_voter", "vote", ["voter_id"])
    # Weight changes touch no indexed column: leave room on each page for HOT updates.
    op.execute("ALTER TABLE vote SET (fillfactor = 90)")
    op.create_table(
        "idea_state",
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("visible_to", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("author_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("merged_into_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_idea_state_status"),
        sa.CheckConstraint(
            "visible_to <@ ARRAY['CUSTOMER','SUPPLIER','PARTNER','EMPLOYEE']::varchar[]",
            name="ck_idea_state_visible_to",
        ),
        sa.CheckConstraint("(status = 'MERGED') OR merged_into_id IS NULL", name="ck_idea_state_merged"),
    )


def downgrade() -> None:
    for table in ("idea_state", "vote", "inbox"):
        op.drop_table(table)
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")
