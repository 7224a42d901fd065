"""Admission before parsing (issue 9, item 1) and NUL at the edge (item 8, NUL only).

Every request pays `admission_charge` points before its document is prepared, a new
document `parse_charge_per_kb` more per started KB; query text over `max_query_bytes` is
refused unparsed. The document cache is bounded in entries and bytes. Strings holding
U+0000, in variables or in the document's literals, are BAD_USER_INPUT naming where.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from app.engine.documents import DocumentCache, PreparedDocument
from app.main import create_app
from tests.conftest import Backend, GraphQLClient
from tests.live_server import live_server

TINY_RESTORE = 0.001  # points per second: nothing comes back during a test


@pytest.fixture
async def key_prefix(backend: Backend) -> AsyncIterator[str]:
    """A rate-limit key prefix of this test's own; its Redis keys are deleted afterwards."""
    prefix = f"shopgraph-test:{uuid.uuid4().hex}:"
    yield prefix
    if backend.redis_url:
        redis = Redis.from_url(backend.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


def _app(backend: Backend, key_prefix: str, **overrides: Any) -> Starlette:
    values: dict[str, Any] = {
        "rate_limit_key_prefix": key_prefix,
        "rate_limit_restore_rate": TINY_RESTORE,
    }
    values.update(overrides)
    return create_app(backend.settings(**values))


async def _client(app: Starlette) -> AsyncIterator[GraphQLClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
        ) as http,
    ):
        yield GraphQLClient(http)


def _cost(response: httpx.Response) -> dict[str, Any]:
    return response.json()["extensions"]["cost"]  # type: ignore[no-any-return]


def _padded(query: str, size: int, tag: str = "") -> str:
    """`query` followed by a comment that makes it `size` bytes long (distinct per tag)."""
    head = f"{query} # {tag} "
    return head + "x" * (size - len(head))


# --- the byte limit ---------------------------------------------------------------------


async def test_query_text_over_the_byte_limit_is_refused_before_any_parse(
    backend: Backend, key_prefix: str
) -> None:
    app = _app(backend, key_prefix, max_query_bytes=1000)
    async for client in _client(app):
        documents = app.state.executor.documents

        response = await client.post(_padded("{ nope }", 1001))

        body = response.json()
        assert response.status_code == 413, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "1001 bytes" in error["message"] and "maximum is 1000" in error["message"]
        assert documents.prepared == 0, "refused unparsed"
        # at the limit it is parsed (and the unknown field reported)
        response = await client.post(_padded("{ nope }", 1000))
        assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert documents.prepared == 1


async def test_an_oversized_document_is_charged_by_its_size_so_a_flood_of_them_is_throttled(
    backend: Backend, key_prefix: str
) -> None:
    # given a bucket of 10 points; a 5 KB document over the 1,000-byte limit costs 1 + 5
    app = _app(backend, key_prefix, rate_limit_capacity=10, max_query_bytes=1000)
    async for client in _client(app):
        first, second = [await client.post(_padded("{ nope }", 5000)) for _ in range(2)]

        # then the first is refused for its size, the second finds too little left
        assert first.status_code == 413, first.text
        assert second.status_code == 429, second.text
        assert second.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert app.state.executor.documents.prepared == 0


async def test_the_byte_limit_counts_utf8_bytes_not_characters(
    backend: Backend, key_prefix: str
) -> None:
    app = _app(backend, key_prefix, max_query_bytes=1000)
    async for client in _client(app):
        # 400 characters, 1200 bytes
        response = await client.post("{ __typename } # " + "€" * 400)

        assert response.status_code == 413, response.text


# --- the admission charge ---------------------------------------------------------------


async def test_no_request_is_free_and_a_new_document_pays_for_its_parse(
    backend: Backend, key_prefix: str
) -> None:
    app = _app(backend, key_prefix, rate_limit_capacity=1000)
    async for client in _client(app):
        # a new document of 5 KB (5 started KB) pays 1 + 5; cached, it pays 1
        query = _padded("{ __typename }", 5000)
        first, second = [await client.post(query) for _ in range(2)]

        assert _cost(first)["admissionCost"] == 1 + 5
        assert _cost(first)["requestedQueryCost"] == 0
        assert _cost(first)["throttleStatus"]["currentlyAvailable"] == 1000 - 6
        assert _cost(second)["admissionCost"] == 1
        assert _cost(second)["throttleStatus"]["currentlyAvailable"] == 1000 - 7


async def test_an_empty_bucket_refuses_even_typename_before_the_parse(
    backend: Backend, key_prefix: str
) -> None:
    app = _app(backend, key_prefix, rate_limit_capacity=5)
    async for client in _client(app):
        documents = app.state.executor.documents
        # 2 (new) + 1 + 1 + 1 = 5 points: four are served
        served = [await client.post("{ __typename }") for _ in range(4)]
        assert [response.status_code for response in served] == [200] * 4

        # a document never seen before would need a parse: it is refused first
        response = await client.post("{ __typename nope }")

        body = response.json()
        assert response.status_code == 429, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "THROTTLED"
        assert "admitting the request costs 2 points" in error["message"]
        assert int(response.headers["retry-after"]) >= 1
        assert documents.prepared == 1, "only `{ __typename }` was ever parsed"


async def test_a_cached_document_refused_after_admission_still_pays_its_charge(
    backend: Backend, key_prefix: str
) -> None:
    # given a document costing more than the maximum (admitted, then refused for its cost)
    app = _app(backend, key_prefix, rate_limit_capacity=1000, max_query_cost=3)
    costly = "{ products(first: 10) { edges { node { name } } } }"
    async for client in _client(app):
        first = await client.post(costly)  # a new document: 1 + 1 per started KB
        second = await client.post(costly)  # cached: its charge is taken with no parse

        # then both are refused for their cost, and each paid its admission
        for response in (first, second):
            assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert _cost(second)["admissionCost"] == 1
        assert _cost(second)["throttleStatus"]["currentlyAvailable"] == 1000 - 2 - 1


async def test_a_cached_document_is_throttled_when_its_charge_does_not_fit(
    backend: Backend, key_prefix: str
) -> None:
    # given a bucket of 3: an over-cost document admitted twice (2 new + 1 cached)
    app = _app(backend, key_prefix, rate_limit_capacity=3, max_query_cost=1)
    costly = "{ products(first: 10) { edges { node { name } } } }"
    async for client in _client(app):
        for _ in range(2):
            refused = await client.post(costly)
            assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"

        # when it comes again with the bucket empty
        response = await client.post(costly)

        # then the answer is the throttle's, not the cost check's: nothing else is said
        body = response.json()
        assert response.status_code == 429, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "THROTTLED"
        assert "admitting the request costs 1 points" in error["message"]
        assert "data" not in body


async def test_a_caller_whose_bucket_is_empty_gets_its_429_late(
    backend: Backend, key_prefix: str
) -> None:
    # given a bucket of 3 points that refills slowly (a new document takes 2, then 1)
    app = _app(
        backend,
        key_prefix,
        rate_limit_capacity=3,
        rate_limit_restore_rate=0.1,
        throttled_hold_seconds=0.5,  # refusals held half a second
    )
    async for client in _client(app):
        for _ in range(2):
            assert (await client.post("{ __typename }")).status_code == 200

        # when it asks again at once
        started = time.monotonic()
        refused = await client.post("{ __typename }")
        held = time.monotonic() - started

        # then the refusal comes, but not before the hold
        assert refused.status_code == 429, refused.text
        assert held >= 0.5


async def test_without_rate_limits_only_the_size_is_checked(backend: Backend) -> None:
    app = create_app(backend.settings(rate_limit_enabled=False, max_query_bytes=1000))
    async for client in _client(app):
        served = await client.post("{ __typename }")
        refused = await client.post(_padded("{ __typename }", 1001))

        assert "admissionCost" not in _cost(served)
        assert refused.status_code == 413


# --- the document cache -----------------------------------------------------------------


def _counting_cache(**bounds: int) -> tuple[DocumentCache, list[str]]:
    parsed: list[str] = []

    def prepare(query: str) -> PreparedDocument:
        parsed.append(query)
        return PreparedDocument(document=None, errors=(), operations={})

    return DocumentCache(prepare, **bounds), parsed


def test_the_document_cache_does_not_keep_large_documents() -> None:
    cache, parsed = _counting_cache(max_entries=10, max_bytes=1000, max_document_bytes=100)

    for _ in range(3):
        cache("x" * 101)
        cache("y" * 100)

    assert parsed == ["x" * 101, "y" * 100] + ["x" * 101] * 2
    assert len(cache) == 1 and cache.bytes == 100


def test_the_document_cache_is_bounded_in_bytes_and_entries() -> None:
    cache, _ = _counting_cache(max_entries=5, max_bytes=250, max_document_bytes=100)

    for number in range(20):
        cache(str(number) * (90 // len(str(number))))

    assert cache.bytes <= 250 and len(cache) == 2
    by_count, _ = _counting_cache(max_entries=5, max_bytes=10_000, max_document_bytes=100)
    for number in range(20):
        by_count(f"{number:02}")
    assert len(by_count) == 5 and "19" in by_count and "14" not in by_count


# --- a flood from one IP, over loopback -------------------------------------------------


async def test_a_flood_of_large_invalid_documents_is_refused_unparsed(
    backend: Backend, key_prefix: str
) -> None:
    # given a bucket of 50 points and documents of 15 KB (1 + 15 points each while new)
    app = _app(backend, key_prefix, rate_limit_capacity=50, max_query_bytes=20_000)
    documents = app.state.executor.documents
    with live_server(app) as url:
        limits = httpx.Limits(max_connections=6)
        async with httpx.AsyncClient(base_url=url, limits=limits) as http:
            client = GraphQLClient(http)

            # when one IP sends 120 distinct ones over 6 connections, and 30 over the limit
            async def send(number: int) -> httpx.Response:
                return await client.post(_padded("{ nope }", 15_000, str(number)))

            responses = await asyncio.gather(*(send(number) for number in range(120)))
            oversized = await asyncio.gather(
                *(client.post(_padded("{ nope }", 20_001, str(n))) for n in range(30))
            )

    # then three are parsed (and invalid); the others are refused before any parse
    statuses = [response.status_code for response in responses]
    assert statuses.count(400) == 3, statuses
    assert statuses.count(429) == 117, statuses
    codes = {response.json()["errors"][0]["extensions"]["code"] for response in responses}
    assert codes == {"GRAPHQL_VALIDATION_FAILED", "THROTTLED"}
    # and the oversized ones, charged by their size too, find the bucket empty
    assert [response.status_code for response in oversized] == [429] * 30
    assert documents.prepared == 3
    # and the cache kept none of them (over max_cached_document_bytes)
    assert len(documents) == 0 and documents.bytes == 0


# --- NUL at the edge --------------------------------------------------------------------

SEARCH = "query ($search: String) { products(filter: {search: $search}) { edges { node { id } } } }"
SLUG = "query ($slug: String) { product(slug: $slug) { id } }"
REGISTER = """mutation ($input: RegisterInput!) {
  register(input: $input) { accessToken }
}"""
ADD_ADDRESS = """mutation ($input: AddressInput!) {
  addAddress(input: $input) { address { id } }
}"""
ADDRESS = {
    "fullName": "Ada",
    "line1": "Main St 1",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


def _bad_input(response: httpx.Response, where: str) -> None:
    body = response.json()
    assert response.status_code == 400, body
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert where in error["message"], error["message"]
    assert "U+0000" in error["message"]


@pytest.mark.parametrize(
    ("query", "variables", "where"),
    [
        (SEARCH, {"search": "ch\x00air"}, "`$search`"),
        (SLUG, {"slug": "\x00"}, "`$slug`"),
        (
            REGISTER,
            {"input": {"email": "n@test.example", "password": "x" * 12, "fullName": "A\x00"}},
            "`$input.fullName`",
        ),
    ],
)
async def test_a_nul_in_a_variable_is_bad_user_input_naming_it(
    anonymous: GraphQLClient, query: str, variables: dict[str, Any], where: str
) -> None:
    _bad_input(await anonymous.post(query, variables), where)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        (
            '{ products(filter: {search: "ch\\u0000air"}) { edges { node { id } } } }',
            "`filter.search`",
        ),
        ('{ product(slug: "\\u0000") { id } }', "`slug`"),
        (
            'mutation { register(input: {email: "m@test.example", password: "xxxxxxxxxxxx",'
            ' fullName: "A\\u0000"}) { accessToken } }',
            "`input.fullName`",
        ),
    ],
)
async def test_a_nul_in_a_string_literal_is_bad_user_input_naming_the_argument(
    anonymous: GraphQLClient, query: str, where: str
) -> None:
    _bad_input(await anonymous.post(query), where)


async def test_a_nul_in_an_address_is_bad_user_input(customer: GraphQLClient) -> None:
    in_list = {**ADDRESS, "line2": "c/o \x00"}
    _bad_input(await customer.post(ADD_ADDRESS, {"input": in_list}), "`$input.line2`")
    literal = (
        ADD_ADDRESS.replace("$input: AddressInput!", "")
        .replace(
            "input: $input",
            'input: {fullName: "Ada", line1: "x\\u0000", city: "B", postalCode: "1", country: "DE"}',
        )
        .replace("mutation ()", "mutation")
    )
    _bad_input(await customer.post(literal), "`input.line1`")


async def test_a_nul_in_a_list_or_a_key_is_found(anonymous: GraphQLClient) -> None:
    query = "query ($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    _bad_input(await anonymous.post(query, {"ids": ["a", "b\x00"]}), "`$ids[1]`")
    _bad_input(await anonymous.post(SEARCH, {"search": "x", "\x00": 1}), "(a key)")


async def test_strings_without_nul_are_served(anonymous: GraphQLClient) -> None:
    data = await anonymous.query('{ product(slug: "\\u0041\\u00e9") { id } }')
    assert data == {"product": None}
    data = await anonymous.query(SEARCH, {"search": "no such product"})
    assert data == {"products": {"edges": []}}
