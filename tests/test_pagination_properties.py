"""Property tests: product listings page, sort and filter like a plain SQL query says they should.

Each example replaces the whole catalog of a private database with a generated one
(ties on every sort key are common), then walks the listing through GraphQL and
compares it with a hand-written reference query.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import event, given, settings, target
from hypothesis import strategies as st
from sqlalchemy import insert, select, text

from app.db import Database
from app.db.checks import run_migrations
from app.main import create_app
from app.models import Role, User
from app.platform.crypto import DataCipher
from app.platform.sealed_users import seal_user
from tests.catalog_factory import (
    INSTANTS,
    PRICES_MINOR,
    SEARCH_ALPHABET,
    GeneratedCatalog,
    GeneratedCategory,
    GeneratedProduct,
    GeneratedReview,
    GeneratedVariant,
    catalogs,
    clear_catalog,
    replace_catalog,
)
from tests.conftest import Backend, GraphQLClient, in_thread, make_backend

REVIEWERS = 4
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)

LISTING = """
query Listing($first: Int, $after: String, $last: Int, $before: String,
              $filter: ProductFilter, $sortBy: ProductSort) {
  products(first: $first, after: $after, last: $last, before: $before,
           filter: $filter, sortBy: $sortBy) {
    totalCount
    edges { cursor node { slug } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

CATEGORY_LISTING = """
query CategoryListing($category: ID!, $first: Int, $after: String, $last: Int, $before: String,
                      $filter: ProductFilter, $sortBy: ProductSort) {
  category(id: $category) {
    products(first: $first, after: $after, last: $last, before: $before,
             filter: $filter, sortBy: $sortBy) {
      totalCount
      edges { cursor node { slug } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""

# The reference: ORDER BY the sort key, then the id, in the same direction.
SORT_KEYS = {
    "NAME": "p.name",
    "PRICE": "COALESCE(p.price_min_minor, 0)",
    "CREATED_AT": "p.created_at",
    "RATING": "p.rating_average",
}


@dataclass(frozen=True)
class PropsStore:
    """The private database of these tests, a client for its app, and its reviewers."""

    backend: Backend
    db: Database
    client: GraphQLClient
    user_ids: list[int]


@pytest.fixture(scope="session")
async def props_store(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PropsStore]:
    """An empty migrated database of the same kind as `backend`, with a few reviewers."""
    made = await make_backend(backend.name, tmp_path_factory.mktemp("props"), "props")
    settings_ = made.settings()
    in_thread(run_migrations, settings_)
    db = Database.from_settings(settings_)
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(User),
            [
                {
                    **seal_user(
                        DataCipher.from_settings(settings_),
                        email=f"reviewer{n}@props.example",
                        full_name=f"Reviewer Number{n}",
                    ),
                    "role": Role.CUSTOMER,
                }
                for n in range(REVIEWERS)
            ],
        )
        user_ids = list((await connection.execute(select(User.id).order_by(User.id))).scalars())
    app = create_app(settings_)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://shopgraph.test"
            ) as http,
        ):
            yield PropsStore(made, db, GraphQLClient(http), user_ids)
    finally:
        async with db.engine.begin() as connection:
            await clear_catalog(connection)
        await db.dispose()


def _global_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


async def _load(store: PropsStore, catalog: GeneratedCatalog) -> None:
    async with store.db.engine.begin() as connection:
        await replace_catalog(connection, catalog, store.user_ids)


async def _reference(
    store: PropsStore,
    *,
    field: str = "NAME",
    descending: bool = False,
    filter: dict[str, Any] | None = None,
    scope: int | None = None,
) -> list[str]:
    """Slugs of the visible products a listing should show, in order (plain SQL)."""
    filter = filter or {}
    terms = ["p.is_published"]
    params: dict[str, Any] = {}
    in_subtree = (
        "p.category_id IN (SELECT c.id FROM categories c WHERE c.id = {0} OR c.parent_id = {0})"
    )
    if scope is not None:
        terms.append(in_subtree.format(":scope"))
        params["scope"] = scope
    if "categoryId" in filter:
        terms.append(in_subtree.format(":category_id"))
        params["category_id"] = filter["categoryPk"]
    if "categorySlug" in filter:
        terms.append(
            in_subtree.format("(SELECT s.id FROM categories s WHERE s.slug = :category_slug)")
        )
        params["category_slug"] = filter["categorySlug"]
    if "search" in filter:
        # Substring by position, not LIKE: no pattern escaping to get right or wrong.
        position = "instr" if store.backend.name == "sqlite" else "strpos"
        terms.append(
            f"({position}(lower(p.name), :search) > 0"
            f" OR {position}(lower(p.description), :search) > 0)"
        )
        params["search"] = filter["search"].lower()
    lowest_price = "(SELECT MIN(v.price_minor) FROM product_variants v WHERE v.product_id = p.id)"
    if "priceMin" in filter:
        terms.append(f"{lowest_price} >= :price_min")
        params["price_min"] = filter["priceMinMinor"]
    if "priceMax" in filter:
        terms.append(f"{lowest_price} <= :price_max")
        params["price_max"] = filter["priceMaxMinor"]
    if "inStock" in filter:
        in_stock = (
            "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND v.stock > 0)"
        )
        terms.append(in_stock if filter["inStock"] else f"NOT {in_stock}")
    if "ratingMin" in filter:
        terms.append(
            "(SELECT CAST(AVG(r.rating) AS DOUBLE PRECISION) FROM reviews r"
            " WHERE r.product_id = p.id) >= :rating_min"
        )
        params["rating_min"] = float(filter["ratingMin"])
    direction = "DESC" if descending else "ASC"
    query = (
        f"SELECT p.slug FROM products p WHERE {' AND '.join(terms)}"
        f" ORDER BY {SORT_KEYS[field]} {direction}, p.id {direction}"
    )
    async with store.db.read() as connection:
        return list((await connection.execute(text(query), params)).scalars())


def _listing(response: dict[str, Any], scope: int | None) -> dict[str, Any]:
    return response["category"]["products"] if scope is not None else response["products"]


async def _page(store: PropsStore, scope: int | None, variables: dict[str, Any]) -> dict[str, Any]:
    if scope is None:
        return _listing(await store.client.query(LISTING, variables), None)
    variables = {**variables, "category": _global_id("Category", scope)}
    return _listing(await store.client.query(CATEGORY_LISTING, variables), scope)


def _slugs(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["slug"] for edge in connection["edges"]]


def _check_page_shape(connection: dict[str, Any]) -> None:
    edges = connection["edges"]
    info = connection["pageInfo"]
    if edges:
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
    else:
        assert info["startCursor"] is None
        assert info["endCursor"] is None


async def _walk_forward(
    store: PropsStore, scope: int | None, size: int, variables: dict[str, Any]
) -> tuple[list[str], int]:
    """Every slug of a listing, page by page with first/after; and its totalCount."""
    seen: list[str] = []
    after = None
    totals = set()
    for _ in range(100):
        page = await _page(store, scope, {**variables, "first": size, "after": after})
        _check_page_shape(page)
        totals.add(page["totalCount"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert len(page["edges"]) <= size
        seen.extend(_slugs(page))
        if not page["pageInfo"]["hasNextPage"]:
            assert len(totals) == 1, totals
            return seen, totals.pop()
        assert len(page["edges"]) == size, "a page before the last one must be full"
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"paging did not end: {seen}")


async def _walk_backward(
    store: PropsStore, scope: int | None, size: int, variables: dict[str, Any]
) -> list[str]:
    """Every slug of a listing, from the end, page by page with last/before."""
    seen: list[str] = []
    before = None
    for _ in range(100):
        page = await _page(store, scope, {**variables, "last": size, "before": before})
        _check_page_shape(page)
        assert page["pageInfo"]["hasNextPage"] is (before is not None)
        assert len(page["edges"]) <= size
        seen = _slugs(page) + seen
        if not page["pageInfo"]["hasPreviousPage"]:
            return seen
        assert len(page["edges"]) == size, "a page after the first one must be full"
        before = page["pageInfo"]["startCursor"]
    raise AssertionError(f"paging did not end: {seen}")


sort_fields = st.sampled_from(list(SORT_KEYS))
page_sizes = st.integers(1, 7)
catalog_strategy = catalogs(reviewers=REVIEWERS)


def _sort(field: str, descending: bool) -> dict[str, str]:
    return {"field": field, "direction": "DESC" if descending else "ASC"}


@PROPERTY_SETTINGS
@given(catalog=catalog_strategy, field=sort_fields, descending=st.booleans(), size=page_sizes)
async def test_paging_forward_yields_every_visible_product_once_in_sort_order(
    props_store: PropsStore, catalog: GeneratedCatalog, field: str, descending: bool, size: int
) -> None:
    # given
    await _load(props_store, catalog)
    expected = await _reference(props_store, field=field, descending=descending)

    # when
    seen, total = await _walk_forward(props_store, None, size, {"sortBy": _sort(field, descending)})

    # then
    assert seen == expected
    assert total == len(expected)


@PROPERTY_SETTINGS
@given(catalog=catalog_strategy, field=sort_fields, descending=st.booleans(), size=page_sizes)
async def test_paging_backward_from_the_end_gives_the_same_order(
    props_store: PropsStore, catalog: GeneratedCatalog, field: str, descending: bool, size: int
) -> None:
    # given
    await _load(props_store, catalog)
    expected = await _reference(props_store, field=field, descending=descending)

    # when
    seen = await _walk_backward(props_store, None, size, {"sortBy": _sort(field, descending)})

    # then
    assert seen == expected


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@st.composite
def _substrings(draw: st.DrawFn, catalog: GeneratedCatalog) -> str:
    """Part of some product's name or description, maybe in the other case: it matches."""
    texts = [product.name for product in catalog.products]
    texts += [product.description for product in catalog.products if product.description]
    whole = draw(st.sampled_from(texts))
    start = draw(st.integers(0, len(whole) - 1))
    end = draw(st.integers(start + 1, len(whole)))
    # Outer spaces left out: the server trims the search text.
    part = whole[start:end].strip()
    return part.swapcase() if draw(st.booleans()) else part


@st.composite
def filters(draw: st.DrawFn, catalog: GeneratedCatalog) -> dict[str, Any]:
    """A ProductFilter (GraphQL variables) plus the storage values the reference needs."""
    chosen: dict[str, Any] = {}
    # Each condition in one filter out of three: with all seven the listing is mostly empty.
    use = st.sampled_from([False, False, True])
    category = st.sampled_from(catalog.categories)
    substrings = _substrings(catalog).filter(bool) if catalog.products else st.nothing()
    if draw(use):
        picked = draw(category)
        chosen["categoryId"] = _global_id("Category", picked.id)
        chosen["categoryPk"] = picked.id
    if draw(use):
        chosen["categorySlug"] = draw(category).slug
    if draw(use):
        chosen["search"] = draw(st.text(SEARCH_ALPHABET, min_size=1, max_size=2) | substrings)
    prices = st.sampled_from(sorted({*PRICES_MINOR, 50, 1000}))
    if draw(use):
        chosen["priceMinMinor"] = draw(prices)
        chosen["priceMin"] = _amount(chosen["priceMinMinor"])
    if draw(use):
        chosen["priceMaxMinor"] = draw(prices)
        chosen["priceMax"] = _amount(chosen["priceMaxMinor"])
    if draw(use):
        chosen["inStock"] = draw(st.booleans())
    if draw(use):
        # Quarters are exact in binary and never equal a k/3 or k/5 average: no rounding edge.
        # 0 is common on purpose: it must still leave unrated products out.
        chosen["ratingMin"] = draw(st.sampled_from([0.0, 0.0, 1.0, 2.5, 3.0, 3.75, 4.0, 5.0]))
    return chosen


_GRAPHQL_FILTER_FIELDS = (
    "categoryId",
    "categorySlug",
    "search",
    "priceMin",
    "priceMax",
    "inStock",
    "ratingMin",
)


@PROPERTY_SETTINGS
@given(
    data=st.data(),
    catalog=catalog_strategy,
    field=sort_fields,
    descending=st.booleans(),
    size=page_sizes,
)
async def test_filters_agree_with_a_plain_sql_query(
    props_store: PropsStore,
    data: st.DataObject,
    catalog: GeneratedCatalog,
    field: str,
    descending: bool,
    size: int,
) -> None:
    # given a catalog, a filter, and maybe a category whose listing we read
    await _load(props_store, catalog)
    chosen = data.draw(filters(catalog), label="filter")
    scope = data.draw(
        st.none() | st.sampled_from([category.id for category in catalog.categories]),
        label="category scope",
    )
    graphql_filter = {name: chosen[name] for name in _GRAPHQL_FILTER_FIELDS if name in chosen}
    expected = await _reference(
        props_store, field=field, descending=descending, filter=chosen, scope=scope
    )

    # when
    seen, total = await _walk_forward(
        props_store,
        scope,
        size,
        {"filter": graphql_filter, "sortBy": _sort(field, descending)},
    )

    # then
    # Steer generation towards filters that keep products: an empty listing proves little.
    target(float(len(expected)), label="matching products")
    event("no product matches" if not expected else "some products match")
    assert seen == expected
    assert total == len(expected)


def _product(
    pk: int,
    name: str,
    *,
    category: int | None = 1,
    prices: tuple[int, ...] = (),
    stocks: tuple[int, ...] = (),
    ratings: tuple[int, ...] = (),
    published: bool = True,
) -> GeneratedProduct:
    return GeneratedProduct(
        id=pk,
        name=name,
        description="",
        category_id=category,
        is_published=published,
        created_at=INSTANTS[0],
        variants=[
            GeneratedVariant(price_minor=price, stock=stock)
            for price, stock in zip(prices, stocks or (0,) * len(prices), strict=True)
        ],
        reviews=[
            GeneratedReview(reviewer=n, rating=rating, created_at=INSTANTS[0])
            for n, rating in enumerate(ratings)
        ],
    )


# Edge cases random catalogs reach only now and then.
FIXED_CATALOG = GeneratedCatalog(
    categories=[
        GeneratedCategory(id=1, parent_id=None, position=0),
        GeneratedCategory(id=2, parent_id=1, position=0),
        GeneratedCategory(id=3, parent_id=None, position=1),
    ],
    products=[
        _product(1, "100% wool", prices=(1299,), stocks=(3,), ratings=(5, 4)),
        _product(2, "1000 wool", category=2, prices=(0, 500), stocks=(0, 0), ratings=(1,)),
        _product(3, "a_b", category=3, prices=(99,), stocks=(1,)),
        _product(4, "axb", category=None),
        _product(5, "hidden 100%", prices=(99,), stocks=(9,), ratings=(5,), published=False),
    ],
)


@pytest.mark.parametrize(
    ("graphql_filter", "expected"),
    [
        pytest.param({"search": "%"}, ["p1"], id="percent is plain text"),
        pytest.param({"search": "_"}, ["p3"], id="underscore is plain text"),
        pytest.param({"search": "0% W"}, ["p1"], id="case-insensitive"),
        pytest.param({"ratingMin": 0}, ["p1", "p2"], id="unrated left out"),
        pytest.param({"priceMin": "0"}, ["p1", "p2", "p3"], id="no variants, no price"),
        pytest.param({"priceMax": "0.99"}, ["p2", "p3"], id="lowest price counts"),
        pytest.param({"inStock": False}, ["p2", "p4"], id="out of stock or no variants"),
        pytest.param({"categoryId": _global_id("Category", 1)}, ["p1", "p2"], id="subtree"),
        pytest.param({"categorySlug": "c2"}, ["p2"], id="leaf by slug"),
        pytest.param(
            {"categoryId": _global_id("Category", 1), "categorySlug": "c2"},
            ["p2"],
            id="id and slug both apply",
        ),
    ],
)
async def test_filters_on_a_fixed_catalog(
    props_store: PropsStore, graphql_filter: dict[str, Any], expected: list[str]
) -> None:
    # given
    await _load(props_store, FIXED_CATALOG)

    # when
    data = await props_store.client.query(LISTING, {"filter": graphql_filter, "first": 10})

    # then
    assert _slugs(data["products"]) == expected
    assert data["products"]["totalCount"] == len(expected)
