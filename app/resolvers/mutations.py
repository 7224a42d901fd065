"""The one shape of a mutation: call a service, answer with a payload, report domain errors.

As Saleor's BaseMutation does, the try / map / return is written here once: a
mutation is then its arguments, one service call and a payload. Permissions are
declared on the field (permission classes). Services name the value at fault in
domain terms ("postal_code"); `field_path` turns that into the userErrors path
the client sent it under (["input", "postalCode"], or a top-level argument).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.platform.errors import DomainError
from app.schema.errors import UserError

R = TypeVar("R")
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Payload(Generic[R, P]):
    """How a mutation answers: with what its service returned, or with userErrors."""

    done: Callable[[R], P]
    failed: Callable[[list[UserError]], P]


def payload_of(cls: Callable[..., P], name: str, build: Callable[[R], Any]) -> Payload[R, P]:
    """The payload type `cls` with `build(result)` as its field `name` (null on failure)."""
    return Payload(
        done=lambda result: cls(**{name: build(result), "user_errors": []}),
        failed=lambda errors: cls(**{name: None, "user_errors": errors}),
    )


async def mutate(
    payload: Payload[R, P],
    call: Callable[[], Awaitable[R]],
    *,
    input_name: str | None = "input",
    arguments: Mapping[str, str] | None = None,
) -> P:
    """Run the service call; its result, or the DomainError it raised, as the payload.

    `arguments` maps the domain field names that are top-level arguments of the
    mutation to those arguments' names; any other field is one of `input_name`'s.
    """
    try:
        result = await call()
    except DomainError as error:
        return payload.failed([user_error(error, input_name=input_name, arguments=arguments)])
    return payload.done(result)


def user_error(
    error: DomainError,
    *,
    input_name: str | None = "input",
    arguments: Mapping[str, str] | None = None,
) -> UserError:
    """The userError that reports a domain error to the client."""
    return UserError(
        field=field_path(error.field, input_name=input_name, arguments=arguments),
        message=error.message,
        code=error.kind,
    )


def field_path(
    field: str | None,
    *,
    input_name: str | None = "input",
    arguments: Mapping[str, str] | None = None,
) -> list[str] | None:
    """Where a domain field name sits in the mutation's arguments, as the client wrote them."""
    if field is None:
        return None
    if arguments is not None and field in arguments:
        return [arguments[field]]
    name = _camel_case(field)
    return [input_name, name] if input_name is not None else [name]


def _camel_case(name: str) -> str:
    # As Strawberry names fields (auto_camel_case): postal_code -> postalCode.
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
