"""stakeholders: accounts, login throttling, signing keys, API keys, experts projection

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


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.create_table(
        "stakeholder",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("organization", sa.String(120), nullable=True),
        sa.Column("expertise", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('CUSTOMER','SUPPLIER','PARTNER','EMPLOYEE')", name="ck_stakeholder_kind"),
        sa.CheckConstraint("role IN ('MEMBER','MODERATOR','PRODUCT_TEAM','ADMIN')", name="ck_stakeholder_role"),
    )
    op.create_index("ux_stakeholder_email", "stakeholder", ["email"], unique=True)  # stored lower-cased
    op.create_index("ix_stakeholder_expertise", "stakeholder", ["expertise"], postgresql_using="gin")
    op.create_table(
        "login_failure",
        sa.Column("email", sa.String(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(), primary_key=True),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_key",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("stakeholder.id"), nullable=False),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read','read-write')", name="ck_api_key_scope"),
    )
    op.create_index("ix_api_key_owner", "api_key", ["owner_id"])
    op.create_table(
        "tag_activity",
        sa.Column("stakeholder_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tag", sa.String(), primary_key=True),
        sa.Column("activity", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_tag_activity_rank", "tag_activity", ["tag", sa.text("activity DESC")])
    op.create_table(
        "idea_tags",
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tags", postgresql.ARRAY(sa.String()), nullable=False),
    )


def downgrade() -> None:
    for table in ("idea_tags", "tag_activity", "api_key", "signing_key", "login_failure", "stakeholder", "inbox"):
        op.drop_table(table)
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")
