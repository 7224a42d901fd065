"""Every non-public name of graphql-core and Strawberry the engine uses, in one place.

The engine builds the resolve info Strawberry's resolvers expect, runs graphql-core
with Strawberry's execution context, and reads Strawberry's definitions off the
graphql-core schema. None of that is public API, so it was checked against the
versions `pyproject.toml` pins; `check_installed` (called when an engine is built)
refuses to run on other versions and says what to install.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata

from graphql import GraphQLField, GraphQLNamedType, GraphQLSchema
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# Strawberry's fast awaitable check, given to graphql-core as its `is_awaitable` hook.
from strawberry.execution import optimized_is_awaitable as is_awaitable
from strawberry.schema import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

# The distributions whose internals the engine relies on.
ENGINE_DISTRIBUTIONS = ("graphql-core", "strawberry-graphql")
# Where Strawberry keeps its definition on graphql-core types and fields.
_DEFINITION_KEY = "strawberry-definition"


class IncompatibleDependency(RuntimeError):
    """An installed dependency is outside the range the engine was tested with."""


def core_schema(schema: Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built."""
    built: GraphQLSchema = schema._schema
    return built


def field_definition(field: GraphQLField) -> StrawberryField | None:
    """Strawberry's definition of a graphql-core field (None for fields it did not make)."""
    definition = (field.extensions or {}).get(_DEFINITION_KEY)
    return definition if isinstance(definition, StrawberryField) else None


def object_definition(graphql_type: GraphQLNamedType) -> StrawberryObjectDefinition | None:
    """Strawberry's definition of a graphql-core object type."""
    definition = (graphql_type.extensions or {}).get(_DEFINITION_KEY)
    return definition if isinstance(definition, StrawberryObjectDefinition) else None


def declared_ranges(distribution: str = "shopgraph") -> dict[str, Requirement]:
    """The requirements `distribution` declares, by canonical dependency name."""
    try:
        declared = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return {}
    ranges: dict[str, Requirement] = {}
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is None:  # extras (dev, bench) are not the app's own
            ranges[canonicalize_name(requirement.name)] = requirement
    return ranges


def check_installed(names: Iterable[str], ranges: Mapping[str, str] | None = None) -> None:
    """Refuse to run when an installed dependency is outside the range shopgraph pins.

    `ranges` (requirement strings by name) replaces the declared ranges, for tests.
    """
    declared = (
        declared_ranges()
        if ranges is None
        else {canonicalize_name(name): Requirement(line) for name, line in ranges.items()}
    )
    for name in names:
        requirement = declared.get(canonicalize_name(name))
        if requirement is None:
            continue  # not installed as a distribution (a bare checkout): nothing to compare
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise IncompatibleDependency(
                f"{name} is not installed: pip install '{requirement}'"
            ) from None
        if not requirement.specifier.contains(Version(installed), prereleases=True):
            raise IncompatibleDependency(
                f"{name} {installed} is installed, but shopgraph was tested with "
                f"{requirement.specifier}: pip install '{requirement}'"
            )


__all__ = [
    "ENGINE_DISTRIBUTIONS",
    "IncompatibleDependency",
    "ResolveInfo",
    "StrawberryGraphQLCoreExecutionContext",
    "check_installed",
    "core_schema",
    "field_definition",
    "is_awaitable",
    "object_definition",
]
