"""Automatic persisted queries (APQ), as Apollo Client's persisted-queries link speaks them.

A hash-only request runs a registered document or answers PersistedQueryNotFound; hash and
query together register it, only when the hash is the query's SHA-256; hash-only GET runs
queries only. The store is bounded (memory) or Redis with a TTL (production), and a Redis
that fails is a miss, never a 500. Apollo Client itself runs against a live server at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.main import create_app
from app.platform.persisted_queries import MemoryPersistedQueryStore, apq_key, sha256_hex
from app.settings import Settings
from tests.conftest import REDIS_URL, Backend, GraphQLClient, serving_app
from tests.live_server import free_port, live_server

NODE_DIR = Path(__file__).parent / "node"
ACCEPT = GraphQLClient.ACCEPT


def document(label: str = "") -> str:
    """A query no earlier test (nor an earlier run, Redis outlives it) has registered."""
    return f"query Apq{label}{uuid.uuid4().hex} {{ products(first: 2) {{ totalCount }} }}"


def persisted(query: str, sha256: str | None = None) -> dict[str, Any]:
    """The APQ extension for `query` (or for the given hash)."""
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256 or sha256_hex(query)}}


def serving(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An HTTP client on a fresh app (its own APQ memory store) with these settings."""
    return serving_app(settings, headers={"Accept": ACCEPT})


@pytest.fixture(scope="module")
async def http(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The app as served: APQ in memory (embedded) or in Redis (PostgreSQL + Redis run)."""
    async with serving(backend.settings()) as client:
        yield client


async def hash_only(http: httpx.AsyncClient, query: str, **params: Any) -> httpx.Response:
    """POST only the hash of `query`, as the link's first try does."""
    return await http.post("/graphql", json={"extensions": persisted(query), **params})


async def register(
    http: httpx.AsyncClient, query: str, sha256: str | None = None
) -> httpx.Response:
    """POST hash and query together, as the link's retry does."""
    return await http.post(
        "/graphql", json={"query": query, "extensions": persisted(query, sha256)}
    )


def only_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "data" not in body, body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]  # type: ignore[no-any-return]


# --- the protocol --------------------------------------------------------------------------


async def test_an_unknown_hash_asks_for_the_document(http: httpx.AsyncClient) -> None:
    # when a client sends only the hash of a document the server has never seen
    response = await hash_only(http, document())

    # then it is told, in the words the link looks for, and no cache keeps the answer
    assert response.status_code == 200
    assert only_error(response) == {
        "message": "PersistedQueryNotFound",
        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
    }
    assert "no-cache" in response.headers["cache-control"]


async def test_hash_and_query_register_then_the_hash_alone_runs(http: httpx.AsyncClient) -> None:
    query = document()

    # when the client sends hash and query, and then the hash alone
    registered = await register(http, query)
    by_hash = await hash_only(http, query)

    # then both run the document
    assert registered.status_code == 200, registered.text
    assert registered.json()["data"]["products"]["totalCount"] > 0
    assert by_hash.status_code == 200, by_hash.text
    assert by_hash.json()["data"] == registered.json()["data"]


async def test_a_hash_that_is_not_the_querys_is_refused_and_nothing_is_stored(
    http: httpx.AsyncClient,
) -> None:
    query, claimed = document(), sha256_hex(document())

    # when a client registers a query under another document's hash
    response = await register(http, query, sha256=claimed)

    # then it is refused, and neither hash names anything afterwards
    assert response.status_code == 400
    assert only_error(response)["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert only_error(await hash_only(http, query))["message"] == "PersistedQueryNotFound"
    claimed_only = await http.post("/graphql", json={"extensions": persisted("", sha256=claimed)})
    assert only_error(claimed_only)["message"] == "PersistedQueryNotFound"


async def test_a_hash_only_get_runs_a_registered_query(http: httpx.AsyncClient) -> None:
    query = document("Get")
    extensions = json.dumps(persisted(query), separators=(",", ":"))

    # when the link sends the hash over GET (useGETForHashedQueries): first unknown, then known
    before = await http.get("/graphql", params={"extensions": extensions})
    await register(http, query)
    after = await http.get("/graphql", params={"extensions": extensions})

    # then the first asks for the document and the second runs it, from the URL alone
    assert only_error(before)["message"] == "PersistedQueryNotFound"
    assert after.status_code == 200, after.text
    assert after.json()["data"]["products"]["totalCount"] > 0


async def test_a_mutation_by_hash_over_get_is_refused(http: httpx.AsyncClient) -> None:
    mutation = f"mutation M{uuid.uuid4().hex}($token: String!) {{ logout(refreshToken: $token) }}"
    await http.post("/graphql", json={"query": mutation, "extensions": persisted(mutation)})
    extensions = json.dumps(persisted(mutation))

    # when it is sent by its hash over GET
    response = await http.get("/graphql", params={"extensions": extensions})

    # then GET stays a query-only path
    assert response.status_code == 405, response.text
    assert only_error(response)["extensions"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": "abc"},
    ],
)
async def test_a_malformed_persisted_query_extension_is_a_bad_request(
    http: httpx.AsyncClient, extensions: dict[str, Any]
) -> None:
    response = await http.post("/graphql", json={"extensions": extensions})

    assert response.status_code == 400
    assert only_error(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_a_request_with_neither_query_nor_persisted_document_is_still_refused(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/graphql", json={"extensions": {"other": 1}})

    assert response.status_code == 400
    assert only_error(response)["message"] == "No GraphQL query found in the request"


async def test_a_document_id_names_an_apq_document_too(http: httpx.AsyncClient) -> None:
    query = document()
    await register(http, query)

    known = await http.post("/graphql", json={"documentId": f"sha256:{sha256_hex(query)}"})
    unknown = await http.post("/graphql", json={"documentId": f"sha256:{sha256_hex(document())}"})
    malformed = await http.post("/graphql", json={"documentId": "md5:abc"})
    both = await http.post(
        "/graphql", json={"documentId": f"sha256:{sha256_hex(query)}", "query": query}
    )

    assert known.json()["data"]["products"]["totalCount"] > 0, known.text
    assert unknown.status_code == 404
    assert only_error(unknown)["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    assert malformed.status_code == both.status_code == 400
    assert only_error(both)["extensions"]["code"] == "BAD_REQUEST"


# --- admission: a hash costs what a query costs --------------------------------------------


async def test_a_hash_only_miss_is_charged_like_any_request(backend: Backend) -> None:
    # given a budget of three admission charges and nothing more
    settings = backend.settings(
        rate_limit_capacity=3,
        rate_limit_restore_rate=0.001,
        rate_limit_key_prefix=f"apq-charge:{uuid.uuid4().hex}:",
    )
    async with serving(settings) as http:
        # when a client sends four hashes the server does not know
        codes = [
            only_error(await hash_only(http, document()))["extensions"]["code"] for _ in range(4)
        ]

    # then each is charged, and the fourth finds the bucket empty
    assert codes == ["PERSISTED_QUERY_NOT_FOUND"] * 3 + ["THROTTLED"]


async def test_a_stored_document_not_in_the_engine_cache_pays_its_parse(
    backend: Backend,
) -> None:
    # given an engine that keeps no prepared document (every text is parsed again)
    settings = backend.settings(document_cache_size=0)
    query = document()
    async with serving(settings) as http:
        await register(http, query)

        # when the document runs by its hash
        body = (await hash_only(http, query)).json()

    # then admission charged its parse (1 per started KB) besides the request (1)
    assert body["extensions"]["cost"]["admissionCost"] == 2, body


# --- the stores ----------------------------------------------------------------------------


async def test_the_memory_store_is_bounded_in_entries(backend: Backend) -> None:
    # given the embedded store, kept to two documents
    settings = backend.settings(redis_url=None, apq_max_entries=2)
    first, second, third = document("A"), document("B"), document("C")
    async with serving(settings) as http:
        # when three are registered
        for query in (first, second, third):
            assert (await register(http, query)).status_code == 200

        # then the least recently used one is gone, the others run
        assert only_error(await hash_only(http, first))["message"] == "PersistedQueryNotFound"
        assert "data" in (await hash_only(http, second)).json()
        assert "data" in (await hash_only(http, third)).json()


async def test_the_memory_store_is_bounded_in_bytes() -> None:
    # given a store of at most 1000 bytes
    store = MemoryPersistedQueryStore(max_entries=1000, max_bytes=1000)

    # when an attacker registers a thousand 300-byte documents, and one too big to keep
    for number in range(1000):
        text = f"{number:04d}" + "x" * 296
        await store.put(sha256_hex(text), text)
    await store.put("big", "é" * 600)  # 1200 bytes in UTF-8

    # then it holds what fits, and the newest
    assert store.bytes <= 1000
    assert len(store) == 3
    last = "0999" + "x" * 296
    assert await store.get(sha256_hex(last)) == last
    assert await store.get("big") is None


@pytest.fixture
def redis_url() -> str:
    if REDIS_URL is None:
        pytest.skip("SHOPGRAPH_TEST_REDIS_URL is not set")
    return REDIS_URL


async def test_with_redis_every_process_sees_a_registration_and_keys_expire(
    backend: Backend, redis_url: str
) -> None:
    # given two server processes' apps on one Redis
    settings = backend.settings(redis_url=redis_url, apq_ttl_seconds=600)
    query = document()
    async with serving(settings) as one, serving(settings) as other:
        # when one registers a document
        assert (await register(one, query)).status_code == 200

        # then the other runs it by its hash
        assert (await hash_only(other, query)).json()["data"]["products"]["totalCount"] > 0

    # and the key lives no longer than the TTL
    redis = Redis.from_url(redis_url)
    try:
        ttl = await redis.ttl(apq_key(sha256_hex(query)))
        assert 0 < ttl <= 600
        assert (await redis.get(apq_key(sha256_hex(query)))) == query.encode()
    finally:
        await redis.aclose()


async def test_an_unreachable_redis_is_a_miss_logged_once_never_a_500(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # given Redis configured on a port nothing listens on
    settings = backend.settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_failover_pause_seconds=0
    )
    query = document()
    async with serving(settings) as http:
        with caplog.at_level(logging.WARNING, logger="shopgraph.persisted_queries"):
            # when clients send hashes and registrations
            missed = [await hash_only(http, query) for _ in range(3)]
            registered = await register(http, query)
            again = await hash_only(http, query)

    # then hashes miss (the client sends its query), queries run, and one warning says why
    assert [only_error(r)["message"] for r in missed] == ["PersistedQueryNotFound"] * 3
    assert registered.status_code == 200
    assert registered.json()["data"]["products"]["totalCount"] > 0
    assert only_error(again)["message"] == "PersistedQueryNotFound"
    warnings = [r for r in caplog.records if r.name == "shopgraph.persisted_queries"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


# --- Apollo Client -------------------------------------------------------------------------


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is missing: CI must run the Apollo Client test")
        pytest.skip("node is not installed: the Apollo Client test needs it")
    if not (NODE_DIR / "node_modules" / "@apollo" / "client").is_dir():
        pytest.fail(f"@apollo/client is not installed: run `npm ci --prefix {NODE_DIR}`")
    return node


@pytest.fixture(scope="module")
def apollo_run(backend: Backend) -> Iterator[dict[str, Any]]:
    """What Apollo Client's persisted-queries link did against a live server."""
    node = _node()
    with live_server(create_app(backend.settings())) as url:
        run = subprocess.run(
            [node, str(NODE_DIR / "apq.mjs"), f"{url}/graphql", uuid.uuid4().hex[:12]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    yield json.loads(run.stdout)


def _sent(outcome: dict[str, Any]) -> list[tuple[str, bool]]:
    """(method, query included) of each request a run sent."""
    return [(request["method"], request["withQuery"]) for request in outcome["requests"]]


def test_apollo_client_registers_over_post_then_sends_only_the_hash(
    apollo_run: dict[str, Any],
) -> None:
    first, again = apollo_run["postFirst"], apollo_run["postAgain"]

    assert _sent(first) == [("POST", False), ("POST", True)]
    assert _sent(again) == [("POST", False)]
    assert len(first["data"]["products"]["edges"]) == 2, first
    assert again["data"] == first["data"]


def test_apollo_client_runs_hashed_queries_over_get(apollo_run: dict[str, Any]) -> None:
    first, again = apollo_run["getFirst"], apollo_run["getAgain"]

    # the miss is retried with the query over POST; afterwards a GET with the hash suffices
    assert _sent(first) == [("GET", False), ("POST", True)]
    assert _sent(again) == [("GET", False)]
    assert again["data"]["products"]["totalCount"] > 0, again
    assert [request["status"] for request in again["requests"]] == [200]


def test_apollo_clients_tampered_hash_is_refused_and_not_stored(
    apollo_run: dict[str, Any],
) -> None:
    # a client whose hash is not its document's: refused on registration, every time
    for tampered in (apollo_run["tampered"], apollo_run["tamperedAgain"]):
        assert _sent(tampered) == [("POST", False), ("POST", True)]
        assert "data" not in tampered, tampered
        assert tampered["codes"] == ["PERSISTED_QUERY_HASH_MISMATCH"]
        assert [request["status"] for request in tampered["requests"]] == [200, 400]
