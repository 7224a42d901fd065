"""HTTP hygiene: security headers on every response, CSP that GraphiQL lives with, HSTS, CORS."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.main import create_app
from tests.conftest import PRODUCTION_DATA_KEYS, Backend

ORIGIN = "https://shop.example"
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


async def _clients(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def production_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with production settings."""
    settings = backend.settings(
        env="production", secret_key="p" * 40, debug=None, **PRODUCTION_DATA_KEYS
    )
    async for client in _clients(create_app(settings)):
        yield client


@pytest.fixture
async def cors_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that lets one browser origin call it."""
    async for client in _clients(create_app(backend.settings(cors_origins=[ORIGIN]))):
        yield client


def _csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    directives = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {name: rest for name, rest in directives}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/graphql", {"query": "{ __typename }"}),
        ("POST", "/graphql", {"query": "{ nope }"}),
        ("POST", "/graphql", [{"query": "{ __typename }"}]),
        ("GET", "/health", None),
        ("GET", "/static/graphiql/start.js", None),
        ("GET", "/no-such-page", None),
    ],
    ids=["query", "invalid", "batch", "health", "static", "not-found"],
)
async def test_every_response_carries_the_security_headers(
    app_client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await app_client.request(method, path, json=body)

    for name, value in COMMON_HEADERS.items():
        assert response.headers[name] == value, name
    assert _csp(response)["frame-ancestors"] == "'none'"


async def test_api_responses_may_load_nothing(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/graphql", json={"query": "{ __typename }"})

    assert _csp(response)["default-src"] == "'none'"


async def test_graphiql_loads_under_its_content_security_policy(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.get("/graphql", headers={"accept": "text/html"})

    csp = _csp(response)
    assert response.headers["content-type"].startswith("text/html")
    assert csp["script-src"] == "'self'", "no inline or foreign scripts"
    assert "'unsafe-eval'" not in response.headers["content-security-policy"]
    assert csp["style-src"] == "'self' 'unsafe-inline'", "the page's <style> and GraphiQL's"
    assert "'self'" in csp["connect-src"], "GraphiQL posts to /graphql"
    # every asset the page names is served from this origin, under /static
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/graphiql/"), asset
        assert (await app_client.get(asset)).status_code == 200, asset
    assert not re.search(r"<script>(?!\s*</script>)", response.text), "no inline script"


async def test_hsts_is_sent_in_production_only(
    app_client: httpx.AsyncClient, production_client: httpx.AsyncClient
) -> None:
    development = await app_client.get("/health")
    production = await production_client.get("/health")

    assert "strict-transport-security" not in development.headers
    assert production.headers["strict-transport-security"].startswith("max-age=")


async def test_a_cors_preflight_for_a_graphql_post_is_allowed(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        "/graphql",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_cross_origin_post_gets_cors_headers(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": ORIGIN}
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()


async def test_a_preflight_from_another_origin_is_refused(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options(
        "/graphql",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_without_configured_origins_there_are_no_cors_headers(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": ORIGIN}
    )

    assert "access-control-allow-origin" not in response.headers
