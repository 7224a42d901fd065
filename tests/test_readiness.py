"""Readiness: `/readyz` asks every dependency and says which one answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import Backend

LISTING = "{ products(first: 2) { totalCount edges { node { name } } } }"


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(backend.settings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


async def test_readiness_reports_every_dependency(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    expected: dict[str, Any] = {"status": "ready", "database": "ok"}
    if backend.redis_url:
        expected["redis"] = "ok"
    assert response.json() == expected


async def test_readiness_names_what_does_not_answer(tmp_path: Any) -> None:
    # given a database file that cannot be opened and a Redis port nobody listens on
    from app.settings import Settings
    from tests.live_server import free_port

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'shop.db'}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        env="development",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        # when
        response = await http.get("/readyz")

    # then: not ready, and each dependency says why
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["database"].startswith("unavailable (")
    assert body["redis"].startswith("unavailable (")
    # liveness is another question: the process itself still answers
    assert (await _get_health(app)).status_code == 200


async def _get_health(app: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        return await http.get("/health")
