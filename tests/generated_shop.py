"""The small shop the generated engine tests run against: seeded rows, callers, argument values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from app.context import Context, Viewer
from app.db import Database
from app.engine import GraphQLExecutor
from app.models import Address, Category, Product, ProductVariant, Review, Role, User
from app.platform.crypto import DataCipher
from app.platform.global_ids import to_global_id
from app.platform.ratelimit import MemoryRateLimiter
from app.platform.sealed_addresses import seal_book_address
from app.platform.sealed_users import seal_user
from app.services.payments.gateway import SandboxGateway
from app.services.seed import seed_catalog
from app.settings import Settings
from tests.conftest import Backend
from tests.graphql_values import Pools

# Cursors of real pages (default sort, another sort, reviews), read once from the catalog.
CURSORS = """
query Cursors($reviewed: [ID!]!) {
  products(first: 3) { edges { cursor } }
  byPrice: products(first: 2, sortBy: {field: PRICE, direction: DESC}) { edges { cursor } }
  nodes(ids: $reviewed) { ... on Product { reviews(first: 2) { edges { cursor } } } }
}
"""


@dataclass(frozen=True)
class GeneratedStore:
    """The seeded database of these tests, its callers and the values documents use."""

    backend: Backend
    settings: Settings
    db: Database
    viewers: dict[str, Viewer]
    pools: Pools


async def seed_generated_shop(
    db: Database, *, cipher: DataCipher
) -> tuple[dict[str, Viewer], dict[str, list[int]]]:
    """A small catalog with one unpublished product, a customer with an address (sealed, as the
    service stores it), a staff member."""
    async with db.engine.begin() as connection:
        await seed_catalog(connection, products=8, random_seed=11, currency="EUR", cipher=cipher)
        products = list(
            (await connection.execute(select(Product.id).order_by(Product.id))).scalars()
        )
        await connection.execute(
            update(Product).where(Product.id == products[-1]).values(is_published=False)
        )
        customer, staff = (
            await connection.execute(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [
                    {
                        **seal_user(
                            cipher, email="gen-customer@test.example", full_name="Gen Customer"
                        ),
                        "role": Role.CUSTOMER,
                    },
                    {
                        **seal_user(cipher, email="gen-staff@test.example", full_name="Gen Staff"),
                        "role": Role.STAFF,
                    },
                ],
            )
        ).scalars()
        address = (
            await connection.execute(
                insert(Address).returning(Address.id),
                [
                    {
                        "user_id": customer,
                        **seal_book_address(
                            cipher,
                            {
                                "full_name": "Gen Customer",
                                "line1": "1 Main Street",
                                "city": "Berlin",
                                "postal_code": "10115",
                                "country": "DE",
                            },
                        ),
                    }
                ],
            )
        ).scalar_one()
        other_user = (
            await connection.execute(
                select(User.id).where(User.id.not_in([customer, staff])).limit(1)
            )
        ).scalar_one()
        pks = {
            "Product": [products[0], products[1], products[-1]],
            "Category": list(
                (
                    await connection.execute(select(Category.id).order_by(Category.id).limit(2))
                ).scalars()
            ),
            "ProductVariant": list(
                (
                    await connection.execute(
                        select(ProductVariant.id).order_by(ProductVariant.id).limit(2)
                    )
                ).scalars()
            ),
            "Review": list(
                (await connection.execute(select(Review.id).order_by(Review.id).limit(2))).scalars()
            ),
            "User": [customer, staff, other_user],
            "Address": [address],
        }
    viewers = {
        "anonymous": Viewer(),
        "customer": Viewer(user_id=customer, role=Role.CUSTOMER, session_id="gen-customer"),
        "staff": Viewer(user_id=staff, role=Role.STAFF, session_id="gen-staff"),
    }
    return viewers, pks


def request_context(store: GeneratedStore, caller: str) -> Context:
    """A fresh request context (fresh loaders), as the server builds one per request."""
    return Context(
        db=store.db,
        settings=store.settings,
        request_id="generated",
        rate_limiter=MemoryRateLimiter(),
        gateway=SandboxGateway(),
        cipher=DataCipher.from_settings(store.settings),
        viewer=store.viewers[caller],
    )


async def argument_pools(
    store: GeneratedStore, executor: GraphQLExecutor, pks: dict[str, list[int]]
) -> Pools:
    """IDs, slugs and cursors of the seeded rows (and bogus ones) for generated arguments."""
    ids = [to_global_id(type_name, pk) for type_name, values in pks.items() for pk in values]
    result = await executor.execute(
        executor.prepare(CURSORS),
        context=request_context(store, "staff"),
        variables={"reviewed": [to_global_id("Product", pk) for pk in pks["Product"]]},
        operation_name=None,
    )
    assert not result.errors, result.errors
    text = json.dumps(result.data)
    cursors = sorted(set(_values_of(result.data, "cursor")))
    assert len(cursors) >= 5, text
    async with store.db.engine.connect() as connection:
        product_slugs = list(
            (
                await connection.execute(select(Product.slug).where(Product.id.in_(pks["Product"])))
            ).scalars()
        )
        category_slugs = list(
            (
                await connection.execute(
                    select(Category.slug).where(Category.id.in_(pks["Category"]))
                )
            ).scalars()
        )
    return Pools(
        ids=(
            *ids,
            to_global_id("Product", 999_999),  # no such row
            to_global_id("Product", 2**31),  # past the primary-key range
            to_global_id("Nope", 1),  # no such type
            "UHJvZHVjdDotMQ",  # Product:-1
            "not-an-id",
            "",
        ),
        slugs=(*product_slugs, *category_slugs, "no-such-slug", ""),
        cursors=(*cursors, "bogus", "", "WyJuYW1lIiwicyIsIngiLDBd"),  # last: ["name","s","x",0]
        type_names=("Product", "Node", "ProductFilter", "NoSuchType"),
    )


def _values_of(data: Any, key: str) -> Iterator[Any]:
    if isinstance(data, dict):
        for name, value in data.items():
            if name == key:
                yield value
            else:
                yield from _values_of(value, key)
    elif isinstance(data, list):
        for item in data:
            yield from _values_of(item, key)
