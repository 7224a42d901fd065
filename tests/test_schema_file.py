"""schema.graphql is the contract: it matches the code, and every part of it is described."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
)
from graphql.type import introspection_types, specified_scalar_types

from app.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"
BUILT_IN = set(introspection_types) | set(specified_scalar_types)


def _own_types() -> list[GraphQLNamedType]:
    schema = build_schema()._schema
    return [t for name, t in sorted(schema.type_map.items()) if name not in BUILT_IN]


def _undescribed(named_type: GraphQLNamedType) -> list[str]:
    """Dotted paths of the parts of a type that have no description."""
    missing: list[str] = []

    def check(path: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(path)

    name = named_type.name
    check(name, named_type.description)
    if isinstance(named_type, GraphQLObjectType | GraphQLInterfaceType):
        for field_name, field in named_type.fields.items():
            check(f"{name}.{field_name}", field.description)
            for arg_name, arg in field.args.items():
                check(f"{name}.{field_name}({arg_name})", arg.description)
    elif isinstance(named_type, GraphQLInputObjectType):
        for field_name, input_field in named_type.fields.items():
            check(f"{name}.{field_name}", input_field.description)
    elif isinstance(named_type, GraphQLEnumType):
        for value_name, value in named_type.values.items():
            check(f"{name}.{value_name}", value.description)
    elif not isinstance(named_type, GraphQLScalarType | GraphQLUnionType):
        raise AssertionError(f"unexpected kind of type: {named_type!r}")
    return missing


def test_schema_file_is_up_to_date() -> None:
    expected = build_schema().as_str() + "\n"

    actual = SCHEMA_FILE.read_text(encoding="utf-8")

    assert actual == expected, "schema.graphql is stale: run `make schema` and commit the result"


def test_every_part_of_the_schema_is_described() -> None:
    missing = [path for named_type in _own_types() for path in _undescribed(named_type)]

    assert missing == [], f"add a description= to: {', '.join(missing)}"


def test_the_description_check_sees_the_whole_schema() -> None:
    names = {named_type.name for named_type in _own_types()}

    assert {"Query", "Product", "ProductFilter", "ProductSortField", "Node"} <= names
    assert not names & BUILT_IN
