"""Password reset by an administrator: a temporary password that must be changed at the
next sign-in.

Revision ID: c5e8a2f4b6d1
Revises: b7d2e4f6a8c0
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c5e8a2f4b6d1"
down_revision = "b7d2e4f6a8c0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
