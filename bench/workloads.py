"""The workloads W0-W7 (W5 and W5b: the two peers; W1c, W1e, W1r: W1 by cache layer; W1n:
W1 beside a flood; W7 and W7s: checkout, on one hot variant and spread over many).

What each one asks, of which server, and with which of shopgraph's caches switched on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Target(StrEnum):
    """Which process answers a workload."""

    SHOPGRAPH = "shopgraph"
    # shopgraph with the default per-IP budget, W1 sent by a partner beside a flood (W1n)
    SHOPGRAPH_FLOODED = "shopgraph-flooded"
    BARE = "bare"
    BARE_REDIS = "bare-redis"  # W0r: the bare endpoint answering a body from Redis
    POSTGRAPHILE5 = "postgraphile5"
    POSTGRAPHILE4 = "postgraphile4"
    FLOOR = "floor"
    # shopgraph with the test payment gateway, driven by bench/checkout_load.py (W7, W7s)
    SHOPGRAPH_CHECKOUT = "shopgraph-checkout"


class CacheMode(StrEnum):
    """Which of shopgraph's caches a shopgraph workload's server runs with (README: Caching).

    OFF is every shopgraph workload but W1e and W1r: SHOPGRAPH_CACHE_ENABLED=false and no
    Redis, so they measure the uncached engine, as before the caches existed (with caching
    on and no Redis, shopgraph would cache responses in process memory).
    """

    OFF = "off"
    ENTITY = "entity"  # Redis; entity cache on and warm, response cache step switched off
    RESPONSE = "response"  # Redis; both caches on, warm: W1 answered from the response cache


class Role(StrEnum):
    """How a workload is read in the results (and coloured in the chart)."""

    SUBJECT = "shopgraph"
    BASELINE = "baseline"
    PEER = "peer"
    FLOOR = "floor"


@dataclass(frozen=True, slots=True)
class Workload:
    """One row of the results: a request (or, for the floor, a set of SQL statements)."""

    key: str
    title: str
    target: Target
    role: Role
    query: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    cache: CacheMode = CacheMode.OFF
    variants: int = 0  # W7, W7s: how many variants the checked-out carts spread over

    def body(self) -> dict[str, Any]:
        """The JSON body POSTed to /graphql."""
        body: dict[str, Any] = {"query": self.query}
        if self.variables:
            body["variables"] = self.variables
        return body


W1_LISTING = """
query StorefrontListing {
  products(first: 20) {
    edges {
      node {
        name
        slug
        description
        priceRange { min { amount currency } max { amount currency } }
        ratingSummary { average count }
        category { name parent { name } }
        variants { sku name price { amount currency } inStock }
        images { url alt }
      }
    }
  }
}
"""

W2_PRODUCT_PAGE = """
query ProductPage($slug: String!) {
  product(slug: $slug) {
    name
    slug
    description
    priceRange { min { amount currency } max { amount currency } }
    ratingSummary { average count }
    variants { sku name price { amount currency } inStock }
    images { url alt }
    reviews(first: 10) {
      edges { node { rating title body createdAt author { displayName } } }
    }
  }
}
"""

W3_SEARCH = """
query FilteredSearch($search: String!) {
  products(first: 20, filter: {search: $search, priceMax: "100"}, sortBy: {field: PRICE}) {
    edges { node { name slug priceRange { min { amount } } } }
  }
}
"""

W4_TYPENAME = "{ __typename }"

# The same data as W1 through PostGraphile 5's generated schema (Amber preset; names
# checked against its introspection): money is the integer minor-unit columns, `inStock`
# is the stock column, the `id` column is `rowId`. PostGraphile 5 offers orderBy and
# condition only on indexed columns: variants and images are ordered by primary key,
# which in the seeded data is their position order (the seed inserts them by position).
W5_POSTGRAPHILE5 = """
query StorefrontListing {
  allProducts(first: 20, orderBy: [NAME_ASC, ROW_ID_ASC], condition: {isPublished: true}) {
    nodes {
      name
      slug
      description
      currency
      priceMinMinor
      priceMaxMinor
      ratingAverage
      ratingCount
      categoryByCategoryId { name categoryByParentId { name } }
      productVariantsByProductId(orderBy: PRIMARY_KEY_ASC) {
        nodes { sku name priceMinor currency stock }
      }
      productImagesByProductId(orderBy: PRIMARY_KEY_ASC) { nodes { url alt } }
    }
  }
}
"""

# The same data through PostGraphile 4 (it ignores indexes when offering orderBy).
W5B_POSTGRAPHILE4 = """
query StorefrontListing {
  allProducts(first: 20, orderBy: [NAME_ASC, ID_ASC], condition: {isPublished: true}) {
    nodes {
      name
      slug
      description
      currency
      priceMinMinor
      priceMaxMinor
      ratingAverage
      ratingCount
      categoryByCategoryId { name categoryByParentId { name } }
      productVariantsByProductId(orderBy: [POSITION_ASC, ID_ASC]) {
        nodes { sku name priceMinor currency stock }
      }
      productImagesByProductId(orderBy: [POSITION_ASC, ID_ASC]) { nodes { url alt } }
    }
  }
}
"""

SEARCH_WORD = "cotton"
SPREAD_VARIANTS = 1_000  # W7s


def all_workloads(product_slug: str) -> list[Workload]:
    """Every workload, in the order of the results table."""
    return [
        Workload(
            "W1",
            "storefront listing, products(first: 20)",
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W1_LISTING,
        ),
        Workload(
            "W1n",
            "W1 beside a noisy neighbour (another IP flooding large invalid documents)",
            Target.SHOPGRAPH_FLOODED,
            Role.SUBJECT,
            W1_LISTING,
        ),
        Workload(
            "W1c",
            "W1 cold: no caches (W1's server, run again beside W1e and W1r)",
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W1_LISTING,
        ),
        Workload(
            "W1e",
            "W1 entity-cached: Redis, warm entity cache, no response cache",
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W1_LISTING,
            cache=CacheMode.ENTITY,
        ),
        Workload(
            "W1r",
            "W1 response-cached: Redis, both caches on and warm",
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W1_LISTING,
            cache=CacheMode.RESPONSE,
        ),
        Workload(
            "W2",
            "product page, product(slug) + reviews(first: 10)",
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W2_PRODUCT_PAGE,
            {"slug": product_slug},
        ),
        Workload(
            "W3",
            f'filtered search "{SEARCH_WORD}", priceMax 100, by price',
            Target.SHOPGRAPH,
            Role.SUBJECT,
            W3_SEARCH,
            {"search": SEARCH_WORD},
        ),
        Workload("W4", "shopgraph { __typename }", Target.SHOPGRAPH, Role.SUBJECT, W4_TYPENAME),
        Workload(
            "W0", "bare Starlette endpoint, small JSON", Target.BARE, Role.BASELINE, W4_TYPENAME
        ),
        Workload(
            "W0r",
            "bare Starlette endpoint, a 20 KB body from one Redis GET",
            Target.BARE_REDIS,
            Role.BASELINE,
            W4_TYPENAME,
        ),
        Workload(
            "W5", "PostGraphile 5, W1's data", Target.POSTGRAPHILE5, Role.PEER, W5_POSTGRAPHILE5
        ),
        Workload(
            "W5b", "PostGraphile 4, W1's data", Target.POSTGRAPHILE4, Role.PEER, W5B_POSTGRAPHILE4
        ),
        Workload("W6", "raw asyncpg, W1's 5 statements", Target.FLOOR, Role.FLOOR),
        Workload(
            "W7",
            "checkout, one hot variant (every cart holds it)",
            Target.SHOPGRAPH_CHECKOUT,
            Role.SUBJECT,
            variants=1,
        ),
        Workload(
            "W7s",
            f"checkout spread over {SPREAD_VARIANTS:,} variants",
            Target.SHOPGRAPH_CHECKOUT,
            Role.SUBJECT,
            variants=SPREAD_VARIANTS,
        ),
    ]


def count_fields(value: Any) -> int:
    """How many fields a GraphQL response resolved: every key of every object in it."""
    if isinstance(value, dict):
        return sum(1 + count_fields(item) for item in value.values())
    if isinstance(value, list):
        return sum(count_fields(item) for item in value)
    return 0
