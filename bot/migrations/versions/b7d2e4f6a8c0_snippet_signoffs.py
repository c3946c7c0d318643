"""Snippet sign-offs: an adviser read a machine-written snippet and signed it off; the
names in posts' histories widened for the console's "姓名（用户名）".

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
        sa.Column("adviser", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("snippet_id"),
    )
    with op.batch_alter_table("posts") as batch:
        batch.alter_column("created_by", type_=sa.String(length=120), existing_nullable=False)
    with op.batch_alter_table("post_events") as batch:
        batch.alter_column("actor", type_=sa.String(length=120), existing_nullable=False)


def downgrade():
    with op.batch_alter_table("post_events") as batch:
        batch.alter_column("actor", type_=sa.String(length=60), existing_nullable=False)
    with op.batch_alter_table("posts") as batch:
        batch.alter_column("created_by", type_=sa.String(length=60), existing_nullable=False)
    op.drop_table("snippet_signoffs")
