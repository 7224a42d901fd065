"""The engine's required-metadata walk (what partner scopes are built on), on a toy schema:
a rule of the walk that the shop's schema has no field to show."""

from __future__ import annotations

import strawberry

from app.engine import GraphQLExecutor, always_required

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


def test_what_an_operation_always_requires_leaves_out_variable_skip_and_include() -> None:
    # given operations selecting the declared field plainly, literally kept or dropped,
    # and under directives that read a variable
    executor = GraphQLExecutor(strawberry.Schema(query=ToyQuery, types=[Secret]), cache_size=10)
    document = """
    query Plain { item { price } }
    query Kept { item { price @include(if: true) } }
    query Dropped { item { price @skip(if: true) } }
    query Maybe($x: Boolean!) { item { price @include(if: $x) } }
    query MaybeNot($x: Boolean = false) { item { ... @skip(if: $x) { price } } }
    """

    # when
    required = always_required(executor, document, SCOPE_KEY)

    # then only what every request of an operation selects counts
    secret = {"secret": ("Secret.price",)}
    assert required == {"Plain": secret, "Kept": secret, "Dropped": {}, "Maybe": {}, "MaybeNot": {}}
