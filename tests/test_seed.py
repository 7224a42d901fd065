"""The demo seed's staff login: added and printed in development only, and honest once changed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.db import Database
from app.db.checks import run_migrations
from app.models import Role, User
from app.platform.crypto import DataCipher
from app.platform.passwords import owasp_hasher
from app.services.seed import (
    DEMO_STAFF_EMAIL,
    DEMO_STAFF_PASSWORD,
    DemoStaff,
    seed_demo_staff,
)
from app.settings import Settings
from tests.conftest import PRODUCTION_DATA_KEYS, _backends, in_thread, make_backend

SHOPGRAPH = Path(sys.executable).parent / "shopgraph"


@pytest.fixture(params=_backends())
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh, migrated, empty database."""
    backend = await make_backend(request.param, tmp_path, "seed")
    in_thread(run_migrations, backend.settings())
    return Database.from_settings(backend.settings())


# The seed seals the email: the staff row is found by its search hash (development keys).
CIPHER = DataCipher.from_settings(Settings())
DEMO_STAFF_HASH = CIPHER.search_hash(DEMO_STAFF_EMAIL)


async def _demo_staff(db: Database) -> DemoStaff:
    async with db.engine.begin() as connection:
        return await seed_demo_staff(connection, cipher=CIPHER)


async def test_the_demo_staff_login_is_added_once_and_reported_changed(database: Database) -> None:
    try:
        assert await _demo_staff(database) is DemoStaff.ADDED
        assert await _demo_staff(database) is DemoStaff.KEPT
        async with database.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(User.role, User.password_hash).where(User.email_hash == DEMO_STAFF_HASH)
                )
            ).all()
        assert len(rows) == 1
        assert rows[0].role is Role.STAFF
        assert owasp_hasher().verify(rows[0].password_hash, DEMO_STAFF_PASSWORD)

        other = owasp_hasher().hash("another-password-entirely")
        async with database.engine.begin() as connection:
            await connection.execute(
                update(User).where(User.email_hash == DEMO_STAFF_HASH).values(password_hash=other)
            )
        assert await _demo_staff(database) is DemoStaff.CHANGED
        assert DEMO_STAFF_PASSWORD not in DemoStaff.CHANGED.login_line()

        async with database.engine.begin() as connection:
            await connection.execute(
                update(User)
                .where(User.email_hash == DEMO_STAFF_HASH)
                .values(password_hash=rows[0].password_hash, role=Role.CUSTOMER)
            )
        assert await _demo_staff(database) is DemoStaff.CHANGED
    finally:
        await database.dispose()


def _shopgraph(workdir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SHOPGRAPH_")}
    env["SHOPGRAPH_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir / 'seed.db'}"
    env.update({f"SHOPGRAPH_{name.upper()}": value for name, value in settings.items()})
    return subprocess.run(
        [str(SHOPGRAPH), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _staff_rows(workdir: Path) -> int:
    with sqlite3.connect(workdir / "seed.db") as connection:
        # The email is sealed; the seed adds no staff but the demo one.
        (count,) = connection.execute("SELECT count(*) FROM users WHERE role = 'STAFF'").fetchone()
    return int(count)


def test_the_seed_command_prints_the_demo_login_in_development(tmp_path: Path) -> None:
    assert _shopgraph(tmp_path, "migrate").returncode == 0
    seeded = _shopgraph(tmp_path, "seed", "--products", "3")
    assert seeded.returncode == 0, seeded.stderr
    lines = seeded.stdout.splitlines()
    assert lines[0].startswith("seeded 3 products,")
    assert lines[1:] == [f"demo staff login: {DEMO_STAFF_EMAIL} / {DEMO_STAFF_PASSWORD}"]
    assert _staff_rows(tmp_path) == 1


def test_the_seed_command_adds_no_staff_login_in_production(tmp_path: Path) -> None:
    production = {"env": "production", "secret_key": "s" * 48, **PRODUCTION_DATA_KEYS}
    assert _shopgraph(tmp_path, "migrate", **production).returncode == 0
    seeded = _shopgraph(tmp_path, "seed", "--products", "3", **production)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("seeded 3 products,")
    assert "staff" not in seeded.stdout
    assert _staff_rows(tmp_path) == 0
