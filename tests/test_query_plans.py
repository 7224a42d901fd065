"""Query plans answer every document as graphql-core does: data, errors and null propagation.

A small schema holds what real resolvers can do: plain attributes, methods, async
resolvers, batched relations (one with a missing row, one whose loader fails), failing
and mis-typed fields at nullable and non-null positions, an interface, arguments and
variables, @skip/@include, fragments and aliases. Each document runs from its plan and on
graphql-core, with the document and plan caches on.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest
import strawberry
from aiodataloader import DataLoader

from app.engine import GraphQLExecutor
from app.schema.relations import each, optional, relation
from tests.test_execution import MODES, assert_plans_answer_as_graphql_core, executor_for

OWNERS = {1: "Ada", 2: "Grace"}
TAGS = {1: ["new"], 2: [], 3: ["sale", "last"]}


async def _owners(keys: list[int]) -> list[dict[str, Any] | None]:
    return [{"id": key, "name": OWNERS[key]} if key in OWNERS else None for key in keys]


async def _tags(keys: list[int]) -> list[list[str]]:
    return [TAGS.get(key, []) for key in keys]


async def _broken(keys: list[int]) -> list[Any]:
    raise RuntimeError("the loader failed")


def _context() -> SimpleNamespace:
    loaders = SimpleNamespace(
        owners=DataLoader(_owners), tags=DataLoader(_tags), broken=DataLoader(_broken)
    )
    return SimpleNamespace(loaders=loaders)


@strawberry.enum
class Size(Enum):
    SMALL = "SMALL"
    LARGE = "LARGE"


@strawberry.type
class Owner:
    id: int
    owner_name: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Owner:
        return cls(id=row["id"], owner_name=row["name"])


@strawberry.type
class Item:
    pk: int
    owner_id: strawberry.Private[int | None]
    label: str
    size: Size
    owner: Owner | None = relation(
        loader=lambda loaders: loaders.owners,
        key=lambda item: item.owner_id,
        build=optional(Owner.from_row),
        description="Who owns it.",
    )
    strict_owner: Owner = relation(
        loader=lambda loaders: loaders.owners,
        key=lambda item: item.owner_id,
        build=optional(Owner.from_row),
        description="Who owns it; never null.",
    )
    tags: list[str] = relation(
        loader=lambda loaders: loaders.tags,
        key=lambda item: item.pk,
        build=each(str.upper),
        description="Tags.",
    )
    broken: str | None = relation(
        loader=lambda loaders: loaders.broken,
        key=lambda item: item.pk,
        build=str,
        description="Read through a loader that fails.",
    )

    bad_key: str | None = relation(
        loader=lambda loaders: loaders.owners,
        key=lambda item: item.pk // (item.pk - 2),  # fails for item 2
        build=optional(lambda row: row["name"]),
        description="A key that cannot always be made.",
    )
    bad_build: str | None = relation(
        loader=lambda loaders: loaders.tags,
        key=lambda item: item.pk,
        build=lambda tags: tags[1],  # fails for fewer than two tags
        description="A build that cannot always be done.",
    )
    no_loader: str | None = relation(
        loader=lambda loaders: loaders.missing,
        key=lambda item: item.pk,
        build=str,
        description="A loader the context does not have.",
    )

    @strawberry.field
    def double(self) -> int:
        return self.pk * 2

    @strawberry.field
    async def slow_label(self) -> str:
        await asyncio.sleep(0)
        return self.label

    @strawberry.field
    async def failing(self) -> str | None:
        raise ValueError(f"boom {self.pk}")

    @strawberry.field
    def bad_int(self) -> int | None:
        return "not a number"  # type: ignore[return-value]

    @strawberry.field
    def strict_fail(self) -> str:
        if self.pk == 2:
            raise ValueError("strict boom")
        return "fine"

    @strawberry.field
    def greet(self, name: str, times: int = 1) -> str:
        return f"{self.label} greets {name}" * times


@strawberry.interface
class Animal:
    name: str


@strawberry.type
class Dog(Animal):
    barks: bool


@strawberry.type
class Cat(Animal):
    lives: int


def _items() -> list[Item]:
    return [
        Item(pk=1, owner_id=1, label="one", size=Size.SMALL),
        Item(pk=2, owner_id=None, label="two", size=Size.LARGE),
        Item(pk=3, owner_id=9, label="three", size=Size.SMALL),  # owner 9 does not exist
    ]


@strawberry.type
class Query:
    @strawberry.field
    async def items(self) -> list[Item]:
        await asyncio.sleep(0)
        return _items()

    @strawberry.field
    def maybe_items(self) -> list[Item | None]:
        return [*_items(), None]

    @strawberry.field
    def animals(self) -> list[Animal]:
        return [Dog(name="Rex", barks=True), Cat(name="Tom", lives=9)]

    @strawberry.field
    def dog(self) -> Dog | None:
        return Cat(name="Not a dog", lives=1)  # type: ignore[return-value]


SCHEMA = strawberry.Schema(query=Query, types=[Dog, Cat])

CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("{ items { pk label size double slowLabel owner { ownerName } tags } }", None),
    ("{ items { pk failing badInt } }", None),
    ("{ maybeItems { pk strictFail } }", None),
    ("{ items { pk strictFail } }", None),
    ("{ maybeItems { pk strictOwner { ownerName } } }", None),
    ("{ items { pk strictOwner { ownerName } } }", None),
    ("{ maybeItems { pk broken tags } }", None),
    ("{ maybeItems { pk badKey badBuild noLoader } }", None),
    ("{ animals { __typename name ... on Dog { barks } ... on Cat { lives } } }", None),
    ("{ dog { name } }", None),
    ("{ __typename items { __typename } }", None),
    (
        "fragment F on Item { l: label d: double o: owner { ownerName } }"
        "{ items { ...F pk2: pk } first: items { pk } }",
        None,
    ),
    (
        "query Q($n: String!) { items { greet(name: $n, times: 2) once: greet(name: $n) } }",
        {"n": "Bo"},
    ),
    ("query Q($n: String!) { items { greet(name: $n) } }", {}),
    ('query Q($n: Int) { items { greet(name: "x", times: $n) } }', {"n": "x"}),
]

DIRECTIVES = (
    "query D($a: Boolean!, $b: Boolean!) { items { pk label @skip(if: $a) size @include(if: $b) } }"
)


async def _answer(
    executor: GraphQLExecutor, query: str, variables: dict[str, Any] | None
) -> tuple[Any, list[Any]]:
    result = await executor.execute(
        executor.prepare(query), context=_context(), variables=variables, operation_name=None
    )
    # Breadth-first plans may find independent errors in another order than graphql-core.
    errors = sorted(
        (
            (error.formatted["message"], repr(error.formatted.get("path")), repr(error.locations))
            for error in result.errors or ()
        ),
    )
    return result.data, errors


@pytest.mark.parametrize(("query", "variables"), CASES)
async def test_plans_answer_as_graphql_core(query: str, variables: dict[str, Any] | None) -> None:
    # when
    answers = [await _answer(executor_for(SCHEMA, mode), query, variables) for mode in MODES]

    # then: same data in the same key order, graphql-core's errors and those it drops
    assert_plans_answer_as_graphql_core(answers[0], answers[1])


async def test_a_plan_runs_every_document_whose_variables_are_valid() -> None:
    executor = executor_for(SCHEMA, "plans")
    planned = 0
    for query, variables in CASES:
        prepared = executor.prepare(query)
        plans = prepared.query_plans
        assert plans is not None
        operation = prepared.operation(None)
        coerced = executor._coerce_variables(operation, variables)
        if isinstance(coerced, list):  # a request error: nothing runs
            continue
        assert plans.plan(operation, coerced) is not None, query
        planned += 1
    assert planned == len(CASES) - 2


async def test_null_propagation_examples() -> None:
    executor = executor_for(SCHEMA, "plans")

    data, errors = await _answer(executor, "{ maybeItems { pk strictFail } }", None)
    assert data == {
        "maybeItems": [{"pk": 1, "strictFail": "fine"}, None, {"pk": 3, "strictFail": "fine"}, None]
    }
    assert [message for message, _, _ in errors] == ["strict boom"]

    data, errors = await _answer(executor, "{ items { pk strictOwner { ownerName } } }", None)
    assert data is None  # a non-null chain up to the root
    assert errors[0][0] == "Cannot return null for non-nullable field Item.strictOwner."

    data, errors = await _answer(executor, "{ maybeItems { pk broken tags } }", None)
    assert data is not None
    assert [item and item["broken"] for item in data["maybeItems"]] == [None, None, None, None]
    assert [item and item["tags"] for item in data["maybeItems"]] == [
        ["NEW"],
        [],
        ["SALE", "LAST"],
        None,
    ]
    assert {message for message, _, _ in errors} == {"the loader failed"}
    assert len(errors) == 3


@pytest.mark.parametrize("a", [True, False])
@pytest.mark.parametrize("b", [True, False])
async def test_skip_and_include_follow_the_variables(a: bool, b: bool) -> None:
    planned = executor_for(SCHEMA, "plans")
    reference = executor_for(SCHEMA, "graphql-core")
    variables = {"a": a, "b": b}

    answer = await _answer(planned, DIRECTIVES, variables)

    assert answer == await _answer(reference, DIRECTIVES, variables)
    first = answer[0]["items"][0]
    assert ("label" in first) is not a
    assert ("size" in first) is b


@pytest.mark.parametrize(
    "fields",
    [
        ("strictFail", "failing"),
        ("strictFail", "owner { ownerName }", "failing"),
        ("pk", "strictOwner { ownerName }", "failing", "badKey"),
    ],
)
async def test_plan_errors_do_not_depend_on_the_order_of_fields(fields: tuple[str, ...]) -> None:
    # given one selection in two orders, where a non-null failure nulls the parent
    executor = executor_for(SCHEMA, "plans")
    ahead, behind = " ".join(fields), " ".join(reversed(fields))
    forward = f"{{ items {{ {ahead} }} maybeItems {{ {ahead} }} }}"
    backward = f"{{ maybeItems {{ {behind} }} items {{ {behind} }} }}"

    # when
    (data_forward, errors_forward), (data_backward, errors_backward) = [
        await _answer(executor, query, None) for query in (forward, backward)
    ]

    # then: the same nulls, and every error of a field that ran, once, in either order
    assert data_forward == data_backward
    paths_and_messages = {(message, path) for message, path, _ in errors_forward}
    assert paths_and_messages == {(message, path) for message, path, _ in errors_backward}
    assert len(errors_forward) == len(set(errors_forward)) == len(paths_and_messages)
    assert any("boom" in message for message, _ in paths_and_messages)
