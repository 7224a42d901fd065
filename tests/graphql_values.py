"""Argument and variable values for generated documents: plausible, bogus and past the caps.

Values are plain data (what a client sends as variables); `literal` writes one into a
document. `Pools` holds the values that mean something in the seeded database (IDs,
slugs, cursors) next to bogus ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FloatValueNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    IntValueNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    Undefined,
    ValueNode,
)
from hypothesis import strategies as st

PAGE_SIZES: list[int | None] = [-1, 0, 1, 2, 5, 20, 100, 101, None]
INTS: list[int | None] = [-1, 0, 1, 3, 101, 2**31 - 1, None]
FLOATS: list[float | None] = [0.0, 1.5, 4.0, 5.0, 6.0, -1.0, None]
STRINGS: list[str | None] = ["", "a", "shirt", "%", "_", "x" * 201, None]
DECIMALS: list[str | None] = ["0", "10", "12.50", "99999", "-1", None]


class EnumName(str):
    """An enum value: written bare in a document, as a string in variables."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a variable left out of the request


@dataclass(frozen=True)
class Pools:
    """Argument values that mean something in the seeded database, and bogus ones."""

    ids: tuple[str, ...]
    slugs: tuple[str, ...]
    cursors: tuple[str, ...]
    type_names: tuple[str, ...]


def literal(value: Any) -> ValueNode:
    """The document literal of a plain value (EnumName for enum values)."""
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, EnumName):
        return EnumValueNode(value=str(value))
    if isinstance(value, str):
        return StringValueNode(value=value)
    if isinstance(value, list):
        return ListValueNode(values=tuple(literal(item) for item in value))
    assert isinstance(value, dict)
    return ObjectValueNode(
        fields=tuple(
            ObjectFieldNode(name=NameNode(value=key), value=literal(item))
            for key, item in value.items()
        )
    )


def argument_value(draw: st.DrawFn, pools: Pools, name: str, input_type: GraphQLInputType) -> Any:
    """A plausible or bogus value (plain data) for an argument or input field called `name`."""
    nullable = not isinstance(input_type, GraphQLNonNull)
    if isinstance(input_type, GraphQLNonNull):
        input_type = input_type.of_type
    if nullable and draw(st.integers(0, 11)) == 0:
        return None
    if isinstance(input_type, GraphQLList):
        if name == "ids" and draw(st.integers(0, 9)) == 0:
            return [pools.ids[0]] * 101  # past the cap of nodes(ids:)
        size = draw(st.integers(0, 3))
        return [argument_value(draw, pools, name, input_type.of_type) for _ in range(size)]
    pool = _pool(pools, name)
    if pool is not None:
        drawn = draw(st.sampled_from(pool))
        return drawn if drawn is not None or nullable else draw(st.sampled_from(pool[:1]))
    if isinstance(input_type, GraphQLEnumType):
        return EnumName(draw(st.sampled_from(sorted(input_type.values))))
    if isinstance(input_type, GraphQLInputObjectType):
        made = {}
        for key, input_field in input_type.fields.items():
            required = (
                isinstance(input_field.type, GraphQLNonNull)
                and input_field.default_value is Undefined
            )
            if required or draw(st.integers(0, 2)) == 0:
                made[key] = argument_value(draw, pools, key, input_field.type)
        return made
    scalar = _SCALAR_POOLS.get(input_type.name, STRINGS)
    drawn = draw(st.sampled_from(scalar))
    return drawn if drawn is not None or nullable else scalar[0]


def _pool(pools: Pools, name: str) -> list[Any] | None:
    if name in ("id", "ids") or name.endswith("Id"):
        return list(pools.ids)
    if name in ("slug", "categorySlug"):
        return list(pools.slugs)
    if name in ("after", "before"):
        return list(pools.cursors)
    if name in ("first", "last"):
        return PAGE_SIZES
    if name == "name":  # __type(name:)
        return list(pools.type_names)
    if name == "search":
        return STRINGS
    if name.startswith("price"):
        return DECIMALS
    if name == "ratingMin":
        return FLOATS
    return None


_SCALAR_POOLS: dict[str, list[Any]] = {
    "Int": INTS,
    "Float": FLOATS,
    "String": STRINGS,
    "Boolean": [True, False, None],
    "Decimal": DECIMALS,
}


def has_default(argument: GraphQLArgument) -> bool:
    """Whether an argument has a default value (null counts)."""
    return argument.default_value is not Undefined


def directive_value(draw: st.DrawFn, kind: str, default: Any) -> Any:
    """A directive variable's value in one run: true, false, explicit null or not sent."""
    if kind == "Boolean!" and default is MISSING:
        # null or nothing is a request error here: sometimes, not mostly.
        return draw(st.sampled_from([True, False, True, False, None, MISSING]))
    return draw(st.sampled_from([True, False, None, MISSING]))
