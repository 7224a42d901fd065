"""The root types: Query, Mutation and Subscription, made of the root fields in app/resolvers."""

from __future__ import annotations

import strawberry

from app.resolvers.accounts import AccountMutation, AccountQuery
from app.resolvers.cart import CartMutation, CartQuery
from app.resolvers.catalog import CatalogQuery
from app.resolvers.catalog_admin import CatalogAdminMutation, ReviewMutation
from app.resolvers.node import NodeQuery
from app.resolvers.orders import OrderMutation, OrderQuery
from app.resolvers.subscriptions import Subscription


@strawberry.type(description="Everything clients can read.")
class Query(NodeQuery, CatalogQuery, AccountQuery, CartQuery, OrderQuery):
    """The root query type."""


@strawberry.type(description="Everything clients can change.")
class Mutation(AccountMutation, CartMutation, OrderMutation, CatalogAdminMutation, ReviewMutation):
    """The root mutation type."""


__all__ = ["Mutation", "Query", "Subscription"]
