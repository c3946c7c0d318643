"""Heartbeats: the scheduler's last tick, which /readyz reports.

Revision ID: e5b1f0a7c3d2
Revises: d7a3c2e91f40
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e5b1f0a7c3d2"
down_revision = "d7a3c2e91f40"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade():
    op.drop_table("heartbeats")
