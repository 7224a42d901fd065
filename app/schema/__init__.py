"""Builds THE schema: root types from resolvers/, extensions from platform/."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.engine.errors import ClientErrors


class ShopgraphSchema(strawberry.Schema):
    """The schema; errors are logged by the ClientErrors extension, not here."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Leave logging to ClientErrors (it knows the request id and what is expected)."""


def build_schema() -> ShopgraphSchema:
    """The GraphQL schema.

    HTTP requests run through app.engine.executor (cached documents,
    graphql-core's executor); ClientErrors covers any other way into the schema.
    """
    # Imported here: the resolvers import the type modules of this package.
    from app.schema.accounts import Address, User
    from app.schema.catalog import Category, Product, ProductVariant, Review
    from app.schema.root import Mutation, Query

    extensions: list[Any] = [ClientErrors]
    return ShopgraphSchema(
        query=Query,
        mutation=Mutation,
        types=[Product, ProductVariant, Category, Review, User, Address],
        extensions=extensions,
        config=StrawberryConfig(),
    )
