"""Builds THE schema: root types from resolvers/, object types from schema/."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from app.resolvers.accounts import AccountMutation, AccountQuery
from app.resolvers.catalog import CatalogQuery
from app.resolvers.catalog_admin import CatalogAdminMutation, ReviewMutation
from app.resolvers.node import NodeQuery
from app.schema.accounts import Address, User
from app.schema.catalog import Category, Product, ProductVariant, Review


@strawberry.type(description="Everything clients can read.")
class Query(NodeQuery, CatalogQuery, AccountQuery):
    """The root query type."""


@strawberry.type(description="Everything clients can change.")
class Mutation(AccountMutation, CatalogAdminMutation, ReviewMutation):
    """The root mutation type."""


def build_schema() -> strawberry.Schema:
    """The GraphQL schema.

    Operations run through `app.engine` (cached documents, query plans, graphql-core for
    the rest), which also maps errors for clients: Strawberry's own `execute` and its
    extension hooks are not on any served path, so the schema has no extensions.
    """
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Product, ProductVariant, Category, Review, User, Address],
        config=StrawberryConfig(),
    )
