"""comments: threaded comments, flags, idea visibility projection

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrations import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KINDS = "'CUSTOMER','SUPPLIER','PARTNER','EMPLOYEE'"
STATUSES = "'OPEN','UNDER_REVIEW','PLANNED','IN_PROGRESS','SHIPPED','DECLINED','MERGED'"


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.create_table(
        "idea_visibility",
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("visible_to", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("author_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_idea_visibility_status"),
        sa.CheckConstraint(f"visible_to <@ ARRAY[{KINDS}]::varchar[]", name="ck_idea_visibility_kinds"),
    )
    op.create_table(
        "comment",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("idea_visibility.idea_id"), nullable=False),
        sa.Column("author_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("parent_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("comment.id"), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("official", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("hidden_reason", sa.String(500), nullable=True),
        sa.Column("hidden_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flag_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("char_length(body) BETWEEN 1 AND 10000", name="ck_comment_body_length"),
        sa.CheckConstraint("flag_count >= 0", name="ck_comment_flag_count"),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="ck_comment_not_own_parent"),
        sa.CheckConstraint(
            "(NOT hidden AND hidden_reason IS NULL AND hidden_by IS NULL AND hidden_at IS NULL) OR "
            "(hidden AND char_length(hidden_reason) BETWEEN 1 AND 500 AND hidden_by IS NOT NULL "
            "AND hidden_at IS NOT NULL)",
            name="ck_comment_hidden_state",
        ),
    )
    # Keyset pages per idea, oldest first (also serves the lateral first pages and the counts).
    op.create_index("ix_comment_idea_created", "comment", ["idea_id", "created_at", "id"])
    op.create_index("ix_comment_parent", "comment", ["parent_id"], postgresql_where=sa.text("parent_id IS NOT NULL"))
    op.create_table(
        "comment_flag",
        sa.Column("comment_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("comment.id"), primary_key=True),
        sa.Column("flagger_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="ck_comment_flag_reason"),
    )


def downgrade() -> None:
    for table in ("comment_flag", "comment", "idea_visibility", "inbox"):
        op.drop_table(table)
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")
