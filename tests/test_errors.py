"""One error hierarchy and enums defined once: what clients see of domain errors."""

from __future__ import annotations

from enum import Enum, StrEnum

import graphql
import pytest
import strawberry

from app.engine import ErrorCode, client_error
from app.loaders.products import ProductSortField
from app.models import Role
from app.platform.errors import ClientError, DomainError, ErrorKind, InvalidInput
from app.resolvers.mutations import field_path
from app.schema import build_schema
from app.schema.enums import graphql_enum

# A kind with a request-level code of its own keeps it; every other kind is bad input.
OWN_CODES = {
    ErrorKind.NOT_FOUND: ErrorCode.NOT_FOUND,
    ErrorKind.FORBIDDEN: ErrorCode.FORBIDDEN,
    ErrorKind.THROTTLED: ErrorCode.THROTTLED,
}


def _sdl_enum(name: str) -> list[str]:
    """The values of an enum as the exported SDL shows them."""
    enum_type = graphql.build_schema(build_schema().as_str()).get_type(name)
    assert isinstance(enum_type, graphql.GraphQLEnumType), name
    return list(enum_type.values)


@pytest.mark.parametrize(
    ("graphql_name", "domain"),
    [("UserErrorCode", ErrorKind), ("Role", Role), ("ProductSortField", ProductSortField)],
)
def test_each_schema_enum_is_its_domain_enum(graphql_name: str, domain: type[Enum]) -> None:
    # then every domain value is a GraphQL value, and nothing else is
    assert _sdl_enum(graphql_name) == [member.name for member in domain]


def test_an_enum_value_without_a_description_is_refused() -> None:
    # given a domain enum with a value the map forgot
    class Colour(StrEnum):
        RED = "RED"
        BLUE = "BLUE"

    # when / then
    with pytest.raises(TypeError, match="BLUE"):
        graphql_enum(Colour, name="Colour", description="A colour.", values={Colour.RED: "Red."})


def test_a_domain_error_is_a_client_error_and_invalid_input_is_one() -> None:
    assert issubclass(DomainError, ClientError)
    assert issubclass(InvalidInput, DomainError)
    assert InvalidInput("bad", field="price").code is ErrorCode.BAD_USER_INPUT


def _raising_schema(kind: ErrorKind) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def thing(self) -> str:
            raise DomainError(f"no {kind.value.lower()} thing", field="thing", kind=kind)

    return strawberry.Schema(query=Query)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_a_domain_error_escaping_a_query_field_keeps_its_message_and_code(
    kind: ErrorKind,
) -> None:
    # given a query field that raises a domain error of this kind
    result = _raising_schema(kind).execute_sync("{ thing }")
    assert result.errors is not None

    # when the engine makes the error safe to send
    [error] = [client_error(error, "req-1") for error in result.errors]

    # then it is reported as what it is, not masked as an internal error
    assert error.message == f"no {kind.value.lower()} thing"
    assert error.extensions == {"code": OWN_CODES.get(kind, ErrorCode.BAD_USER_INPUT).value}
    assert error.path == ["thing"]


@pytest.mark.parametrize(
    ("field", "paths", "expected"),
    [
        (None, None, None),
        ("postal_code", None, ["input", "postalCode"]),
        ("line1", None, ["input", "line1"]),
        ("variant_id", {"variant_id": ["id"]}, ["id"]),
        ("images", {"images": ["input"]}, ["input"]),
    ],
)
def test_a_domain_field_name_becomes_the_path_the_client_sent(
    field: str | None, paths: dict[str, list[str]] | None, expected: list[str] | None
) -> None:
    assert field_path(field, paths=paths) == expected


def test_without_an_input_a_field_is_a_top_level_argument() -> None:
    assert field_path("refresh_token", input_name=None) == ["refreshToken"]
