"""Migrations go up and down cleanly, and they build exactly what the models describe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.checks import alembic_config, run_migrations
from app.models import Base
from app.settings import Settings
from tests.conftest import Backend, in_thread, make_backend

MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture
async def fresh_backend(backend: Backend, tmp_path: Path) -> Backend:
    """An empty database of the same kind as `backend`, never migrated."""
    return await make_backend(backend.name, tmp_path, "migrations")


@pytest.fixture
async def fresh_engine(fresh_backend: Backend) -> AsyncIterator[AsyncEngine]:
    """An engine on the fresh database, disposed after the test."""
    engine = create_async_engine(fresh_backend.database_url)
    yield engine
    await engine.dispose()


def _downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _run(engine: AsyncEngine, fn: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(fn)


async def test_upgrade_downgrade_upgrade(fresh_backend: Backend, fresh_engine: AsyncEngine) -> None:
    settings = fresh_backend.settings()
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()

    in_thread(run_migrations, settings, "head")
    assert await _run(fresh_engine, _tables) == MODEL_TABLES
    assert await _run(fresh_engine, _revision) == head

    in_thread(_downgrade, settings, "base")
    assert await _run(fresh_engine, _tables) == set()
    assert await _run(fresh_engine, _revision) is None

    in_thread(run_migrations, settings, "head")
    assert await _run(fresh_engine, _tables) == MODEL_TABLES
    assert await _run(fresh_engine, _revision) == head


async def test_models_and_migrations_agree(
    fresh_backend: Backend, fresh_engine: AsyncEngine
) -> None:
    in_thread(run_migrations, fresh_backend.settings(), "head")

    differences = await _run(fresh_engine, _differences)

    assert differences == [], (
        "the models differ from what the migrations build; "
        "write a migration (alembic revision --autogenerate) for: "
        f"{differences}"
    )


async def test_0006_seals_the_address_book_and_fills_the_order_email(
    fresh_backend: Backend, fresh_engine: AsyncEngine
) -> None:
    # given a database at 0005 with a plaintext address and an order of its customer
    from sqlalchemy import text

    from app.platform.crypto import DataCipher

    settings = fresh_backend.settings()
    in_thread(run_migrations, settings, "0005")
    async with fresh_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, email, full_name, role, created_at)"
                " VALUES (1, 'ida@old.example', 'Ida', 'CUSTOMER', CURRENT_TIMESTAMP)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO addresses (user_id, full_name, line1, city, postal_code, country,"
                " created_at) VALUES (1, 'Ida Altbau', 'Gartenweg 2', 'Goslar', '38640', 'DE',"
                " CURRENT_TIMESTAMP)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO orders (number, status, user_id, currency, subtotal_minor,"
                " shipping_minor, total_minor, ship_full_name, ship_line1, ship_city,"
                " ship_postal_code, ship_country, created_at, updated_at) VALUES ('SG-OLD', 'PAID',"
                " 1, 'EUR', 100, 0, 100, 'x', 'x', 'x', 'x', 'DE', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"
            )
        )

    # when it is migrated to the head
    in_thread(run_migrations, settings, "head")
    await fresh_engine.dispose()

    # then the address is sealed (and opens), and the order has the sealed email and its hash
    cipher = DataCipher.from_settings(settings)
    async with fresh_engine.connect() as connection:
        address = (await connection.execute(text("SELECT * FROM addresses"))).one()
        order = (await connection.execute(text("SELECT * FROM orders"))).one()
    assert address.line1.startswith("sg1.") and "Gartenweg" not in str(tuple(address))
    assert cipher.decrypt(address.line1, context="addresses.line1") == "Gartenweg 2"
    assert address.line2 is None and address.phone is None and address.country == "DE"
    assert cipher.decrypt(order.contact_email, context="orders.contact_email") == "ida@old.example"
    assert order.email_hash == cipher.search_hash("ida@old.example")

    # and going back to 0005 gives the plaintext back
    in_thread(_downgrade, settings, "0005")
    await fresh_engine.dispose()  # asyncpg's prepared statements know the old table
    async with fresh_engine.connect() as connection:
        address = (await connection.execute(text("SELECT * FROM addresses"))).one()
    assert (address.full_name, address.line1, address.city) == (
        "Ida Altbau",
        "Gartenweg 2",
        "Goslar",
    )


async def test_0008_seals_users_and_downgrade_opens_them(
    fresh_backend: Backend, fresh_engine: AsyncEngine
) -> None:
    # given a database at 0007 with a plaintext user
    from sqlalchemy import text

    from app.platform.crypto import DataCipher

    settings = fresh_backend.settings()
    in_thread(run_migrations, settings, "0007")
    async with fresh_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, email, full_name, role, created_at)"
                " VALUES (1, 'ida@old.example', 'Ida Altbau', 'CUSTOMER', CURRENT_TIMESTAMP)"
            )
        )

    # when it is migrated to the head
    in_thread(run_migrations, settings, "head")
    await fresh_engine.dispose()

    # then the email and name are sealed (and open), and the email hash is filled
    cipher = DataCipher.from_settings(settings)
    async with fresh_engine.connect() as connection:
        user = (await connection.execute(text("SELECT * FROM users"))).one()
    assert "ida@old" not in str(tuple(user)) and "Altbau" not in str(tuple(user))
    assert cipher.decrypt(user.email, context="users.email") == "ida@old.example"
    assert cipher.decrypt(user.full_name, context="users.full_name") == "Ida Altbau"
    assert user.email_hash == cipher.search_hash("ida@old.example")

    # and going back to 0007 gives the plaintext back, unique and lower-cased as before
    in_thread(_downgrade, settings, "0007")
    await fresh_engine.dispose()
    async with fresh_engine.connect() as connection:
        user = (await connection.execute(text("SELECT * FROM users"))).one()
        columns = {column["name"] for column in await connection.run_sync(_user_columns)}
    assert (user.email, user.full_name) == ("ida@old.example", "Ida Altbau")
    assert "email_hash" not in columns


def _user_columns(connection: Connection) -> list[Any]:
    return list(inspect(connection).get_columns("users"))
