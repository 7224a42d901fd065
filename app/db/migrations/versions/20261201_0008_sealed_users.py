"""users sealed: email and full name encrypted, the email unique by its keyed search hash

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:30:00

`users.email` and `users.full_name` are widened for sealed values and the rows already
there are sealed in place (with the cipher of the configured DATA_KEYS, as 0006 opens
it). `users.email_hash` (HMAC of the lower-cased email) takes over the uniqueness of the
email; the check that the email is lower-cased goes (ciphertext is mixed-case; the
service lower-cases before sealing). Downgrade opens them again.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from app.platform.crypto import DataCipher
from app.settings import Settings, load_settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lengths now as app/models/accounts.py has them (SEALED_EMAIL, SEALED_NAME).
EMAIL_BEFORE, EMAIL_NOW = 320, 1792
NAME_BEFORE, NAME_NOW = 200, 1152
BATCH = 500


def _cipher() -> DataCipher:
    given = context.config.attributes.get("settings")
    settings = given if isinstance(given, Settings) else load_settings()
    return DataCipher.from_settings(settings)


def _users() -> sa.TableClause:
    return sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("email", sa.String()),
        sa.column("full_name", sa.String()),
        sa.column("email_hash", sa.String()),
    )


def _rewrite(change: Any) -> None:
    """Write `change(row)` (column values) to every user, in batches."""
    table = _users()
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            connection.execute(sa.update(table).where(table.c.id == row.id).values(**change(row)))
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch_op.drop_constraint(op.f("ck_users_email_lowercase"), type_="check")
        batch_op.alter_column("email", type_=sa.String(length=EMAIL_NOW), existing_nullable=False)
        batch_op.alter_column(
            "full_name", type_=sa.String(length=NAME_NOW), existing_nullable=False
        )
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))

    cipher = _cipher()
    _rewrite(
        lambda row: {
            "email": cipher.encrypt(row.email, context="users.email"),
            "full_name": cipher.encrypt(row.full_name, context="users.full_name"),
            "email_hash": cipher.search_hash(row.email),
        }
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(op.f("uq_users_email_hash"), ["email_hash"])


def downgrade() -> None:
    cipher = _cipher()
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_users_email_hash"), type_="unique")
    _rewrite(
        lambda row: {
            "email": cipher.decrypt(row.email, context="users.email"),
            "full_name": cipher.decrypt(row.full_name, context="users.full_name"),
            "email_hash": row.email_hash,
        }
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_hash")
        batch_op.alter_column(
            "email", type_=sa.String(length=EMAIL_BEFORE), existing_nullable=False
        )
        batch_op.alter_column(
            "full_name", type_=sa.String(length=NAME_BEFORE), existing_nullable=False
        )
        batch_op.create_unique_constraint(op.f("uq_users_email"), ["email"])
        batch_op.create_check_constraint(op.f("ck_users_email_lowercase"), "email = lower(email)")
