"""Builds THE schema: root types from resolvers/, object types from schema/."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig


def build_schema() -> strawberry.Schema:
    """The GraphQL schema.

    Operations run through `app.engine` (cached documents, query plans, graphql-core for
    the rest), which also maps errors for clients: Strawberry's own `execute` and its
    extension hooks are not on any served path, so the schema has no extensions.
    """
    # Imported here: the resolvers import the type modules of this package.
    from app.schema.accounts import Address, User
    from app.schema.catalog import Category, Product, ProductVariant, Review
    from app.schema.orders import Order, Payment
    from app.schema.root import Mutation, Query, Subscription

    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Product, ProductVariant, Category, Review, User, Address, Order, Payment],
        config=StrawberryConfig(),
    )
