"""The engine's required-metadata walk (what partner scopes are built on), on a toy schema:
a rule of the walk that the shop's schema has no field to show."""

from __future__ import annotations

import strawberry

from app.engine import GraphQLExecutor

SCOPE_KEY = "scope"


@strawberry.interface(description="Something with a price.")
class Priced:
    """A toy interface."""

    price: int = strawberry.field(description="Price.")


@strawberry.type(description="A priced thing whose price is declared secret.")
class Secret(Priced):
    """A toy implementation that declares what its interface does not."""

    price: int = strawberry.field(description="Price.", metadata={SCOPE_KEY: "secret"})


@strawberry.type(description="Root.")
class ToyQuery:
    """A toy root."""

    @strawberry.field(description="One item.")
    def item(self) -> Priced:
        return Secret(price=1)


def test_a_field_selected_on_an_interface_needs_what_its_implementations_declare() -> None:
    # given a schema where only the implementation declares
    executor = GraphQLExecutor(strawberry.Schema(query=ToyQuery, types=[Secret]), cache_size=10)
    prepared = executor.prepare("{ item { price } }")

    # when
    required = executor.required(prepared, SCOPE_KEY, operation_name=None, variables=None)

    # then the interface cannot be used to get around the declaration
    assert required == {"secret": ("Secret.price",)}
