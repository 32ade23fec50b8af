"""ideas: ideas (with tally projection and generated search vector), revisions, trending day buckets

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

KINDS = ("customer", "supplier", "partner", "employee")
STATUSES = "'OPEN','UNDER_REVIEW','PLANNED','IN_PROGRESS','SHIPPED','DECLINED','MERGED'"
KIND_VALUES = "'CUSTOMER','SUPPLIER','PARTNER','EMPLOYEE'"
SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, body), 'B')"
)


def _counter(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), nullable=False, server_default="0")


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "idea",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("author_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("title", sa.String(140), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("visible_to", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_note", sa.Text(), nullable=True),
        sa.Column("merged_into_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("idea.id"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        _counter("voters"),
        _counter("score"),
        *[c for k in KINDS for c in (_counter(f"voters_{k}"), _counter(f"weight_{k}"))],
        _counter("recent_score"),
        _counter("comment_count"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search_vector", postgresql.TSVECTOR(), sa.Computed(SEARCH_VECTOR, persisted=True)),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_idea_status"),
        sa.CheckConstraint("char_length(title) BETWEEN 1 AND 140", name="ck_idea_title_length"),
        sa.CheckConstraint("char_length(body) BETWEEN 1 AND 20000", name="ck_idea_body_length"),
        sa.CheckConstraint("cardinality(tags) <= 10", name="ck_idea_tag_count"),
        sa.CheckConstraint(f"visible_to::text[] <@ ARRAY[{KIND_VALUES}]::text[]", name="ck_idea_visible_to"),
        sa.CheckConstraint("(status = 'MERGED') = (merged_into_id IS NOT NULL)", name="ck_idea_merged_into"),
        sa.CheckConstraint("merged_into_id IS NULL OR merged_into_id <> id", name="ck_idea_not_into_itself"),
        sa.CheckConstraint("version >= 1", name="ck_idea_version"),
        # No sign checks on the tally: deltas commute and may arrive in any order (a withdrawal
        # before its cast), so a counter can be negative for a moment.
    )
    # One index per sort, ties broken on id; per segment, only ideas with that kind's votes.
    op.create_index("ix_idea_top", "idea", [sa.text("score DESC"), sa.text("id DESC")])
    op.create_index("ix_idea_trending", "idea", [sa.text("recent_score DESC"), sa.text("id DESC")])
    op.create_index("ix_idea_newest", "idea", [sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index("ix_idea_discussed", "idea", [sa.text("comment_count DESC"), sa.text("id DESC")])
    for k in KINDS:
        op.create_index(
            f"ix_idea_segment_{k}",
            "idea",
            [sa.text(f"weight_{k} DESC"), sa.text("id DESC")],
            postgresql_where=sa.text(f"voters_{k} > 0"),
        )
    op.create_index("ix_idea_tags", "idea", ["tags"], postgresql_using="gin")
    op.create_index("ix_idea_search", "idea", ["search_vector"], postgresql_using="gin")
    op.create_index("ix_idea_title_trgm", "idea", [sa.text("title gin_trgm_ops")], postgresql_using="gin")
    op.create_index(
        "ix_idea_merged_into", "idea", ["merged_into_id"], postgresql_where=sa.text("merged_into_id IS NOT NULL")
    )

    op.create_table(
        "idea_revision",
        sa.Column(
            "idea_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("idea.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(140), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String()), nullable=False, server_default="{}"),
        sa.Column("editor_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name="ck_idea_revision_version"),
    )

    op.create_table(
        "idea_score_day",
        sa.Column(
            "idea_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("idea.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("delta", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_idea_score_day_day", "idea_score_day", ["day"])


def downgrade() -> None:
    for table in ("idea_score_day", "idea_revision", "idea", "inbox"):
        op.drop_table(table)
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS outbox_notify()")
    op.drop_table("outbox")
