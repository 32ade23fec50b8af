"""stakeholders: activity per (stakeholder, idea) instead of per tag

Experts were ranked by activity credited to an idea's tags when the vote or comment was applied,
so the ranking depended on whether the idea's refinement or the vote was handled first (two
streams, two consumers: no order between them). Activity is now kept per idea and counted
under the idea's current tags, which is the same whatever the order. What was credited per tag
before stays in tag_activity and still counts (nothing new is written there).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idea_activity",
        sa.Column("stakeholder_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("idea_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("activity", sa.Integer(), nullable=False),
    )
    op.create_index("ix_idea_activity_idea", "idea_activity", ["idea_id"])
    op.create_index("ix_idea_tags_tags", "idea_tags", ["tags"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_idea_tags_tags", "idea_tags")
    op.drop_table("idea_activity")
