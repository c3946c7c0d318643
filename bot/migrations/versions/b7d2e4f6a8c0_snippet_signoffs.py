"""Snippet sign-offs: an adviser read a machine-written snippet and signed it off.

Revision ID: b7d2e4f6a8c0
Revises: a28e32ad8e02
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b7d2e4f6a8c0"
down_revision = "a28e32ad8e02"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "snippet_signoffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snippet_id", sa.String(length=80), nullable=False),
        sa.Column("adviser", sa.String(length=60), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("snippet_id"),
    )


def downgrade():
    op.drop_table("snippet_signoffs")
