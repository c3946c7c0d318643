"""Exchanges keep a resident's feedback and a QR-code subscribe's scene.

Revision ID: d7a3c2e91f40
Revises: c41f206519fb
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d7a3c2e91f40"
down_revision = "c41f206519fb"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feedback", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("scene", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_exchanges_feedback"), ["feedback"], unique=False)


def downgrade():
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchanges_feedback"))
        batch_op.drop_column("scene")
        batch_op.drop_column("feedback")
