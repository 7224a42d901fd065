"""GraphQL enums derived from the domain's Python enums, so each enum is defined once.

Strawberry reads per-value descriptions only from `strawberry.enum_value` inside the
class body, which a domain enum (a models, loaders or platform module) must not
import. `graphql_enum` registers the domain enum itself and sets the descriptions
from a {member: description} map that must name every member.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry.types.enum import has_enum_definition

E = TypeVar("E", bound=Enum)


def graphql_enum(
    domain: type[E], *, name: str, description: str, values: Mapping[E, str]
) -> type[E]:
    """Make `domain` the GraphQL enum `name`, with a description on every value."""
    missing = [member.name for member in domain if member not in values]
    if missing:
        raise TypeError(f"{name}: describe every value of {domain.__name__}; missing {missing}")
    registered: Any = strawberry.enum(domain, name=name, description=description)
    assert has_enum_definition(registered)
    for value in registered.__strawberry_definition__.values:
        # Strawberry names the GraphQL values after the members ("key" mode).
        value.description = values[domain[value.name]]
    return domain
