"""personal data sealed: the address book encrypted, phones, the order's contact email and its search hash

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:00:00

The address book's personal columns are widened to hold sealed values and the rows
already there are sealed in place (the migration opens the cipher of the configured
DATA_KEYS, as the server does). Orders gain `ship_phone`, `contact_email` (sealed) and
`email_hash` (keyed HMAC), filled for existing orders from their customer's email.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from app.platform.crypto import DataCipher
from app.settings import Settings, load_settings

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# column: (length before, length now, nullable); lengths now as app/models/accounts.py has them
_ADDRESS_COLUMNS = {
    "full_name": (200, 1152, False),
    "line1": (200, 1152, False),
    "line2": (200, 1152, True),
    "city": (100, 620, False),
    "postal_code": (20, 192, False),
}
_ORDER_COLUMNS = {
    "ship_full_name": (400, 1152, False),
    "ship_line1": (400, 1152, False),
    "ship_line2": (400, 1152, True),
    "ship_city": (300, 620, False),
    "ship_postal_code": (200, 192, False),
}
PHONE_LENGTH = 256
EMAIL_LENGTH = 1792
BATCH = 500


def _cipher() -> DataCipher:
    given = context.config.attributes.get("settings")
    settings = given if isinstance(given, Settings) else load_settings()
    return DataCipher.from_settings(settings)


def _addresses() -> sa.TableClause:
    columns = [sa.column(name, sa.String()) for name in _ADDRESS_COLUMNS]
    return sa.table("addresses", sa.column("id", sa.Integer()), *columns)


def _rewrite_addresses(change: Any) -> None:
    """Apply `change(value, context)` to every personal field of every address, in batches."""
    table = _addresses()
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            values = {
                name: None
                if getattr(row, name) is None
                else change(getattr(row, name), f"addresses.{name}")
                for name in _ADDRESS_COLUMNS
            }
            connection.execute(sa.update(table).where(table.c.id == row.id).values(**values))
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        for name, (_, length, nullable) in _ADDRESS_COLUMNS.items():
            batch_op.alter_column(name, type_=sa.String(length=length), existing_nullable=nullable)
        batch_op.add_column(sa.Column("phone", sa.String(length=PHONE_LENGTH), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, (before, length, nullable) in _ORDER_COLUMNS.items():
            if length > before:
                batch_op.alter_column(
                    name, type_=sa.String(length=length), existing_nullable=nullable
                )
        batch_op.add_column(sa.Column("ship_phone", sa.String(length=PHONE_LENGTH), nullable=True))
        batch_op.add_column(
            sa.Column("contact_email", sa.String(length=EMAIL_LENGTH), nullable=True)
        )
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_orders_email_hash", ["email_hash"], unique=False)

    cipher = _cipher()
    # Before 0006 the address book held plaintext: seal it.
    _rewrite_addresses(lambda value, ctx: cipher.encrypt(value, context=ctx))
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer()),
        sa.column("user_id", sa.Integer()),
        sa.column("contact_email", sa.String()),
        sa.column("email_hash", sa.String()),
    )
    users = sa.table("users", sa.column("id", sa.Integer()), sa.column("email", sa.String()))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(orders.c.id, users.c.email).join(users, users.c.id == orders.c.user_id)
    ).all()
    for row in rows:
        connection.execute(
            sa.update(orders)
            .where(orders.c.id == row.id)
            .values(
                contact_email=cipher.encrypt(row.email, context="orders.contact_email"),
                email_hash=cipher.search_hash(row.email),
            )
        )


def downgrade() -> None:
    cipher = _cipher()
    _rewrite_addresses(lambda value, ctx: cipher.decrypt(value, context=ctx))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_email_hash")
        batch_op.drop_column("email_hash")
        batch_op.drop_column("contact_email")
        batch_op.drop_column("ship_phone")
        for name, (before, length, nullable) in _ORDER_COLUMNS.items():
            if length > before:
                batch_op.alter_column(
                    name, type_=sa.String(length=before), existing_nullable=nullable
                )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_column("phone")
        for name, (before, _, nullable) in _ADDRESS_COLUMNS.items():
            batch_op.alter_column(name, type_=sa.String(length=before), existing_nullable=nullable)
