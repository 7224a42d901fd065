"""trusted documents

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:39:08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_trusted_documents_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_documents")),
        sa.UniqueConstraint("client", "sha256", name="uq_trusted_documents_client_sha256"),
    )
    with op.batch_alter_table("trusted_documents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trusted_documents_sha256_partner_id", ["sha256", "partner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("trusted_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_trusted_documents_sha256_partner_id")

    op.drop_table("trusted_documents")
