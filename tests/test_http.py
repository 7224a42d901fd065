"""GraphQL over HTTP: methods, media types, status codes and request-level errors."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.main import create_app
from app.settings import Settings
from tests.conftest import PRODUCTION_DATA_KEYS, Backend, GraphQLClient

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

TYPENAME = "{ __typename }"
PRODUCT_COUNT = "{ products(first: 1) { totalCount } }"
PRODUCT_NAMES = "query Names($first: Int) { products(first: $first) { edges { node { name } } } }"
MUTATION = "mutation { x }"
PARSE_ERROR = "{ products(first: 1) { totalCount }"
UNKNOWN_FIELD = "{ products(first: 1) { noSuchField } }"
LARGE_PAGE = """
{
  products(first: 60) {
    edges { node { name description variants { sku name price { amount currency } } } }
  }
}
"""

# Fail before execution: parse, validation, variable coercion.
REQUEST_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (PARSE_ERROR, {}, "GRAPHQL_PARSE_FAILED"),
    (UNKNOWN_FIELD, {}, "GRAPHQL_VALIDATION_FAILED"),
    (PRODUCT_NAMES, {"first": "many"}, "BAD_USER_INPUT"),
]
REQUEST_ERROR_IDS = ["parse", "validation", "variables"]


async def _client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def small_body_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that accepts request bodies of at most 2 KiB."""
    async for client in _client_for(create_app(backend.settings(max_body_bytes=2048))):
        yield client


@pytest.fixture
async def production_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with production settings (debug left to its default)."""
    settings = backend.settings(
        env="production", secret_key="p" * 40, debug=None, **PRODUCTION_DATA_KEYS
    )
    async for client in _client_for(create_app(settings)):
        yield client


@pytest.fixture
async def broken_database_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose database was never migrated: every table is missing."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}",
        env="development",
        debug=True,
    )
    async for client in _client_for(create_app(settings)):
        yield client


def _post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    return client.post("/graphql", json=payload, headers=headers or {})


def _error_codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


# --- methods ---------------------------------------------------------------------------


async def test_a_query_is_answered_over_post(anonymous: GraphQLClient) -> None:
    response = await anonymous.post(PRODUCT_COUNT)

    assert response.status_code == 200
    assert response.json()["data"]["products"]["totalCount"] > 0


async def test_a_query_is_answered_over_get(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(
        "/graphql", params={"query": PRODUCT_NAMES, "variables": '{"first": 2}'}
    )

    assert response.status_code == 200
    assert len(response.json()["data"]["products"]["edges"]) == 2


async def test_a_mutation_over_get_is_405_with_allow(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get(
        "/graphql", params={"query": MUTATION}, headers={"accept": GRAPHQL_RESPONSE}
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert _error_codes(response) == ["METHOD_NOT_ALLOWED"]


async def test_other_methods_are_405_with_allow(app_client: httpx.AsyncClient) -> None:
    response = await app_client.put("/graphql", json={"query": TYPENAME})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert _error_codes(response) == ["METHOD_NOT_ALLOWED"]


# --- media types -----------------------------------------------------------------------


async def test_no_accept_header_answers_application_json(
    app_client: httpx.AsyncClient,
) -> None:
    request = app_client.build_request("POST", "/graphql", json={"query": TYPENAME})
    del request.headers["accept"]

    response = await app_client.send(request)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html, */*;q=0.8", JSON),
        ("", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, */*", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.5, */*", JSON),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
    ],
)
async def test_the_media_type_follows_the_accept_header(
    app_client: httpx.AsyncClient, accept: str, media_type: str
) -> None:
    response = await _post(app_client, TYPENAME, headers={"accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type


async def test_a_wildcard_accept_gets_application_json_status_codes(
    app_client: httpx.AsyncClient,
) -> None:
    response = await _post(app_client, UNKNOWN_FIELD, headers={"accept": "*/*"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    assert "data" not in response.json()
    assert _error_codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_accept_application_json_is_honoured(app_client: httpx.AsyncClient) -> None:
    response = await _post(app_client, TYPENAME, headers={"accept": JSON})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS, ids=REQUEST_ERROR_IDS)
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    app_client: httpx.AsyncClient, query: str, variables: dict[str, Any], code: str
) -> None:
    response = await _post(app_client, query, variables, headers={"accept": GRAPHQL_RESPONSE})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    assert _error_codes(response) == [code]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS, ids=REQUEST_ERROR_IDS)
async def test_request_errors_are_200_without_data_for_application_json(
    app_client: httpx.AsyncClient, query: str, variables: dict[str, Any], code: str
) -> None:
    response = await _post(app_client, query, variables, headers={"accept": JSON})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    assert "data" not in response.json()
    assert _error_codes(response) == [code]


async def test_an_unusable_accept_header_is_406(app_client: httpx.AsyncClient) -> None:
    response = await _post(app_client, TYPENAME, headers={"accept": "text/plain"})

    assert response.status_code == 406
    assert response.headers["content-type"].startswith(JSON)
    assert _error_codes(response) == ["NOT_ACCEPTABLE"]


# --- request-level failures --------------------------------------------------------------


async def test_malformed_json_is_400_with_a_json_error(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/graphql", content=b'{"query": "{ __typename }"', headers={"content-type": JSON}
    )

    assert response.status_code == 400
    assert not response.headers["content-type"].startswith("text/")
    assert _error_codes(response) == ["BAD_REQUEST"]


async def test_a_batch_is_400(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/graphql", json=[{"query": TYPENAME}, {"query": TYPENAME}])

    assert response.status_code == 400
    assert _error_codes(response) == ["BAD_REQUEST"]
    assert "Batched" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("payload", [{}, {"query": ""}, {"query": None}], ids=str)
async def test_a_missing_query_is_400(
    app_client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await app_client.post("/graphql", json=payload)

    assert response.status_code == 400
    assert _error_codes(response) == ["BAD_REQUEST"]
    assert "No GraphQL query" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("name", ["variables", "extensions"])
@pytest.mark.parametrize("value", ["string", 0, False, ["array"]], ids=repr)
async def test_a_parameter_that_must_be_an_object_is_400_otherwise(
    app_client: httpx.AsyncClient, name: str, value: object
) -> None:
    response = await app_client.post("/graphql", json={"query": TYPENAME, name: value})

    assert response.status_code == 400
    assert _error_codes(response) == ["BAD_REQUEST"]
    assert f"`{name}` must be an object" in response.json()["errors"][0]["message"]


async def test_extensions_may_be_an_object_or_null(app_client: httpx.AsyncClient) -> None:
    for extensions in ({"any": "thing"}, None):
        response = await app_client.post(
            "/graphql", json={"query": TYPENAME, "extensions": extensions}
        )

        assert response.status_code == 200
        assert response.json()["data"] == {"__typename": "Query"}


async def test_get_extensions_must_be_a_json_object(app_client: httpx.AsyncClient) -> None:
    accepted = await app_client.get(
        "/graphql", params={"query": TYPENAME, "extensions": '{"a": 1}'}
    )
    refused = await app_client.get("/graphql", params={"query": TYPENAME, "extensions": "[1]"})

    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert _error_codes(refused) == ["BAD_REQUEST"]


async def test_a_get_without_query_is_400(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/graphql", headers={"accept": JSON})

    assert response.status_code == 400
    assert _error_codes(response) == ["BAD_REQUEST"]


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b"{ __typename }"),
        ("application/x-www-form-urlencoded", b"query=%7B__typename%7D"),
        ("application/graphql", b"{ __typename }"),
    ],
    ids=["text", "form", "graphql"],
)
async def test_a_wrong_content_type_is_415(
    app_client: httpx.AsyncClient, content_type: str, content: bytes
) -> None:
    response = await app_client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )

    assert response.status_code == 415
    assert response.headers["content-type"].startswith(JSON)
    assert _error_codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_a_body_over_the_limit_is_413(small_body_client: httpx.AsyncClient) -> None:
    padding = " " * 3000

    response = await _post(small_body_client, TYPENAME + padding)

    assert response.status_code == 413
    assert _error_codes(response) == ["PAYLOAD_TOO_LARGE"]


async def test_a_streamed_body_over_the_limit_is_413(
    small_body_client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    response = await small_body_client.post(
        "/graphql", content=chunks(), headers={"content-type": JSON}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert _error_codes(response) == ["PAYLOAD_TOO_LARGE"]


async def test_a_body_under_the_limit_is_served(small_body_client: httpx.AsyncClient) -> None:
    response = await _post(small_body_client, TYPENAME + " " * 1000)

    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


# --- transport extras ----------------------------------------------------------------------


async def test_a_large_response_is_gzipped(app_client: httpx.AsyncClient) -> None:
    request = app_client.build_request(
        "POST", "/graphql", json={"query": LARGE_PAGE}, headers={"accept-encoding": "gzip"}
    )

    response = await app_client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert b'"products"' in gzip.decompress(raw)


async def test_a_client_that_does_not_ask_for_gzip_gets_identity_with_vary(
    app_client: httpx.AsyncClient,
) -> None:
    request = app_client.build_request(
        "POST", "/graphql", json={"query": LARGE_PAGE}, headers={"accept-encoding": "identity"}
    )

    response = await app_client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert b'"products"' in raw
    # the same URL answers gzip to others: shared caches must keep the two apart
    assert response.headers["vary"] == "Accept-Encoding"
    gzipped = await _post(app_client, LARGE_PAGE, headers={"accept-encoding": "gzip"})
    assert gzipped.headers.get_list("vary") == ["Accept-Encoding"]


async def test_a_small_response_is_not_gzipped(app_client: httpx.AsyncClient) -> None:
    response = await _post(app_client, TYPENAME, headers={"accept-encoding": "gzip"})

    assert "content-encoding" not in response.headers


async def test_a_browser_gets_graphiql_served_locally(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text), (
        "GraphiQL must not load assets from a CDN"
    )


async def test_graphiql_is_not_served_in_production(
    production_client: httpx.AsyncClient,
) -> None:
    response = await production_client.get("/graphql", headers={"accept": "text/html"})

    assert "text/html" not in response.headers["content-type"]


async def test_a_valid_request_id_is_echoed(app_client: httpx.AsyncClient) -> None:
    response = await _post(app_client, TYPENAME, headers={"x-request-id": "checkout-42.a_b"})

    assert response.headers["x-request-id"] == "checkout-42.a_b"


@pytest.mark.parametrize("given", [None, "has spaces", "x" * 65], ids=["none", "spaces", "long"])
async def test_a_request_id_is_generated_when_none_usable_is_given(
    app_client: httpx.AsyncClient, given: str | None
) -> None:
    headers = {"x-request-id": given} if given is not None else {}

    response = await _post(app_client, TYPENAME, headers=headers)

    generated = response.headers["x-request-id"]
    assert generated != given
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


# --- admission order ------------------------------------------------------------------------


@pytest.mark.parametrize("query", [UNKNOWN_FIELD, PARSE_ERROR, MUTATION], ids=str)
async def test_a_bad_credential_is_refused_before_the_document_is_looked_at(
    app_client: httpx.AsyncClient, query: str
) -> None:
    # Authentication is the pipeline's first step: the document's own problems come after.
    response = await app_client.get(
        "/graphql",
        params={"query": query},
        headers={"authorization": "Bearer not-a-token", "accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _error_codes(response) == ["UNAUTHENTICATED"]


# --- debug data and error masking -----------------------------------------------------------


async def test_development_responses_carry_debug_data(anonymous: GraphQLClient) -> None:
    response = await anonymous.post(PRODUCT_COUNT)

    debug = response.json()["extensions"]["debug"]
    assert isinstance(debug["sqlStatements"], int)
    assert debug["sqlStatements"] > 0
    assert isinstance(debug["durationMs"], int | float)
    assert debug["durationMs"] >= 0


async def test_production_responses_carry_no_debug_data(
    production_client: httpx.AsyncClient,
) -> None:
    response = await _post(production_client, PRODUCT_COUNT)

    body = response.json()
    assert body["data"]["products"]["totalCount"] > 0
    assert "debug" not in body.get("extensions", {})


async def test_an_unexpected_error_is_masked_with_the_request_id(
    broken_database_client: httpx.AsyncClient,
) -> None:
    response = await _post(broken_database_client, PRODUCT_COUNT)

    body = response.json()
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["path"] == ["products"]
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    assert "OperationalError" not in response.text
    assert "no such table" not in response.text
