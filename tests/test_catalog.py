"""The public catalog against the seeded demo data, each answer checked with plain SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Row, text

from app.db import Database
from app.platform.crypto import DataCipher
from app.platform.global_ids import to_global_id
from app.platform.sealed_users import open_name
from app.settings import Settings
from tests.conftest import GraphQLClient

PRODUCT_FIELDS = "id slug name description isPublished createdAt"
PRODUCT_BY_SLUG = f"query ($slug: String!) {{ product(slug: $slug) {{ {PRODUCT_FIELDS} }} }}"
PRODUCT_BY_ID = f"query ($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
NODE = """
query ($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Product { slug }
    ... on ProductVariant { sku }
    ... on Category { slug }
    ... on Review { title }
  }
}
"""
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
PRODUCT_LISTING = "{ products(first: 100) { totalCount edges { node { slug } } } }"
CATEGORY_LISTING = """
query ($slug: String!) {
  category(slug: $slug) { products(first: 100) { totalCount edges { node { slug } } } }
}
"""
CATEGORY_TREE = """
{
  categories {
    id slug name description
    parent { slug }
    children { slug name parent { slug } children { slug } }
  }
}
"""
CATEGORY_BY_SLUG = """
query ($slug: String!) {
  category(slug: $slug) { slug name description parent { slug name } children { slug name } }
}
"""
PRICES_AND_RATINGS = """
{
  products(first: 100) {
    edges {
      node {
        slug
        priceRange { min { amount currency } max { amount currency } }
        ratingSummary { average count }
      }
    }
  }
}
"""
REVIEWS = """
query ($slug: String!, $first: Int, $after: String, $last: Int, $before: String) {
  product(slug: $slug) {
    reviews(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      edges { cursor node { id rating author { displayName } } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""
PUBLIC_PROFILE_FIELDS = '{ __type(name: "PublicProfile") { fields { name } } }'
VARIANTS = """
{
  products(first: 100) {
    edges { node { slug variants { id sku name inStock price { amount currency } } } }
  }
}
"""
STOCK_QUANTITY = (
    "query ($slug: String!) { product(slug: $slug) { variants { sku stockQuantity } } }"
)
RELATED_IDS = """
query ($slug: String!) {
  product(slug: $slug) {
    id
    category { id }
    variants { id }
    reviews(first: 1) { edges { node { id } } }
  }
}
"""


class Sql:
    """Plain SQL against the test database, beside the app."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def rows(self, query: str, **params: Any) -> list[Row[Any]]:
        """All rows of a query."""
        async with self.db.read() as connection:
            return list((await connection.execute(text(query), params)).all())

    async def column(self, query: str, **params: Any) -> list[Any]:
        """The first column of every row."""
        return [row[0] for row in await self.rows(query, **params)]

    async def value(self, query: str, **params: Any) -> Any:
        """The one value of a one-row, one-column query."""
        (row,) = await self.rows(query, **params)
        return row[0]


@pytest.fixture(scope="session")
async def sql(settings: Settings) -> AsyncIterator[Sql]:
    """SQL access to the seeded database the app reads."""
    db = Database.from_settings(settings)
    try:
        yield Sql(db)
    finally:
        await db.dispose()


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _display_name(full_name: str) -> str:
    parts = full_name.split()
    return f"{parts[0]} {parts[-1][0]}."


def _slugs(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["slug"] for edge in connection["edges"]]


async def _unpublished(sql: Sql) -> Row[Any]:
    rows = await sql.rows(
        "SELECT p.id, p.slug, c.slug AS category_slug, parent.slug AS root_slug"
        " FROM products p JOIN categories c ON c.id = p.category_id"
        " JOIN categories parent ON parent.id = c.parent_id"
        " WHERE NOT p.is_published ORDER BY p.id"
    )
    assert rows, "the seeded catalog should hold an unpublished product"
    return rows[0]


async def _most_reviewed(sql: Sql) -> str:
    rows = await sql.column(
        "SELECT p.slug FROM products p JOIN reviews r ON r.product_id = p.id"
        " WHERE p.is_published GROUP BY p.id, p.slug ORDER BY COUNT(r.id) DESC, p.id LIMIT 1"
    )
    return str(rows[0])


# --- published / unpublished -------------------------------------------------------------


async def test_unpublished_product_is_not_found_by_slug(anonymous: GraphQLClient, sql: Sql) -> None:
    # given
    hidden = await _unpublished(sql)

    # when
    data = await anonymous.query(PRODUCT_BY_SLUG, {"slug": hidden.slug})

    # then
    assert data["product"] is None


async def test_unpublished_product_is_not_found_by_id_or_node(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    hidden = await _unpublished(sql)
    global_id = to_global_id("Product", hidden.id)

    # when
    by_id = await anonymous.query(PRODUCT_BY_ID, {"id": global_id})
    as_node = await anonymous.query(NODE, {"id": global_id})

    # then
    assert by_id["product"] is None
    assert as_node["node"] is None


async def test_variants_and_reviews_of_an_unpublished_product_are_not_nodes(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    hidden = await _unpublished(sql)
    variant_ids = await sql.column(
        "SELECT id FROM product_variants WHERE product_id = :id", id=hidden.id
    )
    review_ids = await sql.column("SELECT id FROM reviews WHERE product_id = :id", id=hidden.id)
    ids = [to_global_id("ProductVariant", pk) for pk in variant_ids] + [
        to_global_id("Review", pk) for pk in review_ids
    ]
    assert variant_ids

    # when
    data = await anonymous.query(NODES, {"ids": ids})

    # then
    assert data["nodes"] == [None] * len(ids)


async def test_listing_and_total_count_hold_only_published_products(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    published = await sql.column("SELECT slug FROM products WHERE is_published")
    hidden = await sql.column("SELECT slug FROM products WHERE NOT is_published")
    assert hidden

    # when
    data = await anonymous.query(PRODUCT_LISTING)

    # then
    listed = _slugs(data["products"])
    assert sorted(listed) == sorted(published)
    assert not set(hidden) & set(listed)
    assert data["products"]["totalCount"] == len(published)


async def test_category_listings_leave_unpublished_products_out(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given an unpublished product, its category and that category's root
    hidden = await _unpublished(sql)

    for slug in (hidden.category_slug, hidden.root_slug):
        # when
        data = await anonymous.query(CATEGORY_LISTING, {"slug": slug})

        # then
        listing = data["category"]["products"]
        assert hidden.slug not in _slugs(listing)
        published = await sql.value(
            "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id"
            " LEFT JOIN categories parent ON parent.id = c.parent_id"
            " WHERE p.is_published AND (c.slug = :slug OR parent.slug = :slug)",
            slug=slug,
        )
        assert listing["totalCount"] == len(listing["edges"]) == published


# --- products by slug and id -------------------------------------------------------------


async def test_product_by_slug_and_by_id_is_the_stored_product(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    (row,) = await sql.rows(
        "SELECT id, slug, name, description FROM products WHERE is_published ORDER BY id LIMIT 1"
    )

    # when
    by_slug = (await anonymous.query(PRODUCT_BY_SLUG, {"slug": row.slug}))["product"]
    by_id = (await anonymous.query(PRODUCT_BY_ID, {"id": to_global_id("Product", row.id)}))[
        "product"
    ]

    # then
    assert by_slug == by_id
    assert by_slug["id"] == to_global_id("Product", row.id)
    assert (by_slug["slug"], by_slug["name"], by_slug["description"]) == (
        row.slug,
        row.name,
        row.description,
    )
    assert by_slug["isPublished"] is True


async def test_unknown_slug_gives_null(anonymous: GraphQLClient) -> None:
    # when
    data = await anonymous.query(PRODUCT_BY_SLUG, {"slug": "no-such-product"})

    # then
    assert data["product"] is None


# --- categories --------------------------------------------------------------------------


async def test_categories_are_the_six_roots_in_position_order_with_their_children(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    roots = await sql.rows(
        "SELECT id, slug, name, description FROM categories WHERE parent_id IS NULL"
        " ORDER BY position, name, id"
    )

    # when
    data = await anonymous.query(CATEGORY_TREE)

    # then
    assert len(data["categories"]) == 6
    assert [category["slug"] for category in data["categories"]] == [row.slug for row in roots]
    for category, row in zip(data["categories"], roots, strict=True):
        assert category["id"] == to_global_id("Category", row.id)
        assert (category["name"], category["description"]) == (row.name, row.description)
        assert category["parent"] is None
        children = await sql.rows(
            "SELECT slug, name FROM categories WHERE parent_id = :id ORDER BY position, name, id",
            id=row.id,
        )
        assert [(child["slug"], child["name"]) for child in category["children"]] == [
            (child.slug, child.name) for child in children
        ]
        assert len(children) == 4
        for child in category["children"]:
            assert child["parent"] == {"slug": row.slug}
            assert child["children"] == []


async def test_category_by_slug_has_its_parent_and_children(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    (leaf,) = await sql.rows(
        "SELECT c.slug, c.name, parent.slug AS parent_slug, parent.name AS parent_name"
        " FROM categories c JOIN categories parent ON parent.id = c.parent_id"
        " WHERE c.slug = 'electronics-phones'"
    )
    children = await sql.column(
        "SELECT c.slug FROM categories c JOIN categories parent ON parent.id = c.parent_id"
        " WHERE parent.slug = 'electronics' ORDER BY c.position, c.name, c.id"
    )

    # when
    root = (await anonymous.query(CATEGORY_BY_SLUG, {"slug": "electronics"}))["category"]
    phones = (await anonymous.query(CATEGORY_BY_SLUG, {"slug": "electronics-phones"}))["category"]

    # then
    assert root["parent"] is None
    assert [child["slug"] for child in root["children"]] == children
    assert "electronics-phones" in children
    assert phones["name"] == leaf.name
    assert phones["parent"] == {"slug": leaf.parent_slug, "name": leaf.parent_name}
    assert phones["children"] == []


async def test_root_category_products_include_its_subcategories_products(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given the roots; the demo catalog files products under subcategories only
    roots = await sql.rows("SELECT id, slug FROM categories WHERE parent_id IS NULL")
    directly_in_roots = await sql.value(
        "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id"
        " WHERE c.parent_id IS NULL"
    )
    assert directly_in_roots == 0

    for root in roots:
        # when
        data = await anonymous.query(CATEGORY_LISTING, {"slug": root.slug})

        # then: the subtree's published products, sorted by name (the default)
        expected = await sql.column(
            "SELECT p.slug FROM products p JOIN categories c ON c.id = p.category_id"
            " WHERE p.is_published AND c.parent_id = :root ORDER BY p.name, p.id",
            root=root.id,
        )
        listing = data["category"]["products"]
        assert expected
        assert _slugs(listing) == expected
        assert listing["totalCount"] == len(expected)


# --- prices and ratings ------------------------------------------------------------------


async def test_price_range_and_rating_summary_match_variants_and_reviews(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    prices = {
        row.slug: (row.low, row.high)
        for row in await sql.rows(
            "SELECT p.slug, MIN(v.price_minor) AS low, MAX(v.price_minor) AS high"
            " FROM products p JOIN product_variants v ON v.product_id = p.id"
            " WHERE p.is_published GROUP BY p.slug"
        )
    }
    ratings = {
        row.slug: (row.average, row.reviews)
        for row in await sql.rows(
            "SELECT p.slug, AVG(r.rating) AS average, COUNT(r.id) AS reviews"
            " FROM products p LEFT JOIN reviews r ON r.product_id = p.id"
            " WHERE p.is_published GROUP BY p.slug"
        )
    }

    # when
    data = await anonymous.query(PRICES_AND_RATINGS)

    # then
    products = [edge["node"] for edge in data["products"]["edges"]]
    assert {product["slug"] for product in products} == set(ratings)
    for product in products:
        low, high = prices[product["slug"]]
        assert product["priceRange"] == {
            "min": {"amount": _amount(low), "currency": "EUR"},
            "max": {"amount": _amount(high), "currency": "EUR"},
        }
        average, count = ratings[product["slug"]]
        summary = product["ratingSummary"]
        assert summary["count"] == count
        if count == 0:
            assert summary["average"] is None
        else:
            assert summary["average"] == pytest.approx(round(float(average), 2), abs=1e-9)


# --- reviews -----------------------------------------------------------------------------


async def test_review_author_is_only_a_display_name(
    anonymous: GraphQLClient, sql: Sql, settings: Settings
) -> None:
    # given (the names are stored sealed)
    slug = await _most_reviewed(sql)
    sealed_names = await sql.column(
        "SELECT u.full_name FROM reviews r JOIN users u ON u.id = r.user_id"
        " JOIN products p ON p.id = r.product_id WHERE p.slug = :slug"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT 3",
        slug=slug,
    )
    cipher = DataCipher.from_settings(settings)
    full_names = [open_name(cipher, name) for name in sealed_names]

    # when
    data = await anonymous.query(REVIEWS, {"slug": slug, "first": 3})
    profile = await anonymous.query(PUBLIC_PROFILE_FIELDS)

    # then
    authors = [edge["node"]["author"] for edge in data["product"]["reviews"]["edges"]]
    assert authors == [{"displayName": _display_name(name)} for name in full_names]
    assert [field["name"] for field in profile["__type"]["fields"]] == ["displayName"]


async def test_reviews_are_newest_first_and_counted(anonymous: GraphQLClient, sql: Sql) -> None:
    # given
    slug = await _most_reviewed(sql)
    newest_first = await sql.rows(
        "SELECT r.id, r.rating FROM reviews r JOIN products p ON p.id = r.product_id"
        " WHERE p.slug = :slug ORDER BY r.created_at DESC, r.id DESC",
        slug=slug,
    )
    assert len(newest_first) > 6

    # when
    data = await anonymous.query(REVIEWS, {"slug": slug, "first": 3})

    # then
    reviews = data["product"]["reviews"]
    assert [(edge["node"]["id"], edge["node"]["rating"]) for edge in reviews["edges"]] == [
        (to_global_id("Review", row.id), row.rating) for row in newest_first[:3]
    ]
    assert reviews["totalCount"] == len(newest_first)
    assert reviews["pageInfo"]["hasNextPage"] is True
    assert reviews["pageInfo"]["hasPreviousPage"] is False


async def test_review_pages_continue_after_the_end_cursor_without_overlap(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    slug = await _most_reviewed(sql)
    expected = [
        to_global_id("Review", pk)
        for pk in await sql.column(
            "SELECT r.id FROM reviews r JOIN products p ON p.id = r.product_id"
            " WHERE p.slug = :slug ORDER BY r.created_at DESC, r.id DESC",
            slug=slug,
        )
    ]

    # when
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await anonymous.query(REVIEWS, {"slug": slug, "first": 3, "after": after})
        reviews = data["product"]["reviews"]
        assert reviews["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen.extend(edge["node"]["id"] for edge in reviews["edges"])
        pages += 1
        if not reviews["pageInfo"]["hasNextPage"]:
            break
        after = reviews["pageInfo"]["endCursor"]
        assert pages < 20

    # then
    assert seen == expected
    assert pages == -(-len(expected) // 3)


async def test_review_pages_go_backwards_with_last_and_before(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    slug = await _most_reviewed(sql)
    expected = [
        to_global_id("Review", pk)
        for pk in await sql.column(
            "SELECT r.id FROM reviews r JOIN products p ON p.id = r.product_id"
            " WHERE p.slug = :slug ORDER BY r.created_at DESC, r.id DESC",
            slug=slug,
        )
    ]

    # when: the oldest three first, then earlier pages until the newest
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        data = await anonymous.query(REVIEWS, {"slug": slug, "last": 3, "before": before})
        reviews = data["product"]["reviews"]
        ids = [edge["node"]["id"] for edge in reviews["edges"]]
        if pages == 0:
            assert ids == expected[-3:]
        assert reviews["pageInfo"]["hasNextPage"] is (before is not None)
        seen = ids + seen
        pages += 1
        if not reviews["pageInfo"]["hasPreviousPage"]:
            break
        before = reviews["pageInfo"]["startCursor"]
        assert pages < 20

    # then
    assert seen == expected


# --- variants ----------------------------------------------------------------------------


async def test_variants_are_in_position_order_and_in_stock_means_stock_above_zero(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    stored: dict[str, list[tuple[str, str, bool, str]]] = {}
    for row in await sql.rows(
        "SELECT p.slug, v.sku, v.name, v.stock, v.price_minor FROM product_variants v"
        " JOIN products p ON p.id = v.product_id WHERE p.is_published"
        " ORDER BY p.slug, v.position, v.id"
    ):
        stored.setdefault(row.slug, []).append(
            (row.sku, row.name, row.stock > 0, _amount(row.price_minor))
        )
    in_stock = [variant[2] for variants in stored.values() for variant in variants]
    assert True in in_stock
    assert False in in_stock

    # when
    data = await anonymous.query(VARIANTS)

    # then
    answered = {
        edge["node"]["slug"]: [
            (variant["sku"], variant["name"], variant["inStock"], variant["price"]["amount"])
            for variant in edge["node"]["variants"]
        ]
        for edge in data["products"]["edges"]
    }
    assert answered == stored


async def test_stock_quantity_is_forbidden_for_anonymous(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    slug = await _most_reviewed(sql)
    skus = await sql.column(
        "SELECT v.sku FROM product_variants v JOIN products p ON p.id = v.product_id"
        " WHERE p.slug = :slug ORDER BY v.position, v.id",
        slug=slug,
    )

    # when
    response = await anonymous.post(STOCK_QUANTITY, {"slug": slug})

    # then
    body = response.json()
    assert len(body["errors"]) == len(skus)
    for error in body["errors"]:
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"][-1] == "stockQuantity"
    assert body["data"]["product"]["variants"] == [
        {"sku": sku, "stockQuantity": None} for sku in skus
    ]


# --- node / nodes ------------------------------------------------------------------------


async def test_node_fetches_each_type_by_its_id(anonymous: GraphQLClient, sql: Sql) -> None:
    # given a product's own ID and the IDs of its category, a variant and a review
    slug = await _most_reviewed(sql)
    (row,) = await sql.rows(
        "SELECT c.slug AS category_slug,"
        " (SELECT v.sku FROM product_variants v WHERE v.product_id = p.id"
        "  ORDER BY v.position, v.id LIMIT 1) AS sku,"
        " (SELECT r.title FROM reviews r WHERE r.product_id = p.id"
        "  ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS title"
        " FROM products p JOIN categories c ON c.id = p.category_id WHERE p.slug = :slug",
        slug=slug,
    )
    product = (await anonymous.query(RELATED_IDS, {"slug": slug}))["product"]
    cases = [
        (product["id"], "Product", "slug", slug),
        (product["category"]["id"], "Category", "slug", row.category_slug),
        (product["variants"][0]["id"], "ProductVariant", "sku", row.sku),
        (product["reviews"]["edges"][0]["node"]["id"], "Review", "title", row.title),
    ]

    for global_id, type_name, field, value in cases:
        # when
        node = (await anonymous.query(NODE, {"id": global_id}))["node"]

        # then
        assert node == {"__typename": type_name, "id": global_id, field: value}


async def test_nodes_keeps_the_order_with_null_for_a_missing_one(
    anonymous: GraphQLClient, sql: Sql
) -> None:
    # given
    slug = await _most_reviewed(sql)
    product = (await anonymous.query(RELATED_IDS, {"slug": slug}))["product"]
    hidden = await _unpublished(sql)
    missing = 1 + await sql.value("SELECT MAX(id) FROM products")
    ids = [
        product["category"]["id"],
        to_global_id("Product", missing),
        product["id"],
        product["reviews"]["edges"][0]["node"]["id"],
        to_global_id("Product", hidden.id),
        product["variants"][0]["id"],
    ]

    # when
    data = await anonymous.query(NODES, {"ids": ids})

    # then
    assert data["nodes"] == [
        {"__typename": "Category", "id": ids[0]},
        None,
        {"__typename": "Product", "id": ids[2]},
        {"__typename": "Review", "id": ids[3]},
        None,
        {"__typename": "ProductVariant", "id": ids[5]},
    ]
