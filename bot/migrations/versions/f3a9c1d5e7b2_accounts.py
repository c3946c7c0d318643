"""Accounts: one deployment serves several official accounts; exchanges and posts name theirs.

Revision ID: f3a9c1d5e7b2
Revises: e5b1f0a7c3d2
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3a9c1d5e7b2"
down_revision = "e5b1f0a7c3d2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=True),
        sa.Column("original_id", sa.String(length=40), nullable=True),
        sa.Column("account_type", sa.String(length=20), nullable=True),
        sa.Column("encryption", sa.String(length=20), nullable=True),
        sa.Column("token_env", sa.String(length=80), nullable=True),
        sa.Column("aes_key_env", sa.String(length=80), nullable=True),
        sa.Column("aes_key_previous_env", sa.String(length=80), nullable=True),
        sa.Column("app_secret_env", sa.String(length=80), nullable=True),
        sa.Column("office_name", sa.String(length=80), nullable=True),
        sa.Column("office_phone", sa.String(length=40), nullable=True),
        sa.Column("office_address", sa.String(length=200), nullable=True),
        sa.Column("office_hours", sa.String(length=80), nullable=True),
        sa.Column("help_channels", sa.JSON(), nullable=False),
        sa.Column("calendar_file", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        sa.UniqueConstraint("app_id"),
    )
    op.execute(
        "INSERT INTO accounts (id, slug, name, help_channels) VALUES (1, 'default', '', '[]')"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval(pg_get_serial_sequence('accounts', 'id'), 1)")
    for table in ("exchanges", "posts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("account_id", sa.Integer(), server_default="1", nullable=False)
            )
            batch.create_index(f"ix_{table}_account_id", ["account_id"])
            batch.create_foreign_key(f"fk_{table}_account_id", "accounts", ["account_id"], ["id"])


def downgrade():
    for table in ("exchanges", "posts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_account_id", type_="foreignkey")
            batch.drop_index(f"ix_{table}_account_id")
            batch.drop_column("account_id")
    op.drop_table("accounts")
