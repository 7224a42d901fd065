"""The one shape of a mutation: arguments, one service call, a payload.

As Saleor's BaseMutation does, everything else is written here once. A mutation
is declared as the function that calls its service, decorated with its payload,
its permission classes and its arguments; the docstring is its description:

    @mutation(VARIANT, STAFF, scope=NOT_FOR_PARTNERS, variant_id=VARIANT_ID, quantity=QUANTITY)
    async def set_stock(context: Context, *, variant_id: int, quantity: int) -> Row[Any]:
        \"\"\"Set a variant's stock. Staff only.\"\"\"
        return await catalog.set_stock(context.db, variant_id=variant_id, quantity=quantity)

`scope` is the field's partner-scope declaration (app/schema/scopes.py), required so
that no mutation forgets one. The decorator builds the Strawberry field: it decodes global-ID arguments to
primary keys, runs the call, and answers with the payload or, for a DomainError,
with userErrors. Services name the value at fault in domain terms ("postal_code",
"variant_id"); `field_path` turns that into the path the client sent it under:
a top-level argument (["variantId"]) or a field of `input` (["input", "postalCode"]).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.permission import BasePermission

from app.platform.errors import DomainError
from app.platform.global_ids import decode_id_of
from app.schema.errors import UserError

R = TypeVar("R")
P = TypeVar("P")
INPUT = "input"


@dataclass(frozen=True, slots=True)
class Payload(Generic[R, P]):
    """How a mutation answers: its payload type, made from the call's result or from userErrors."""

    type: type[P]
    done: Callable[[R], P]
    failed: Callable[[list[UserError]], P]


def payload_of(cls: type[P], name: str, build: Callable[[R], Any]) -> Payload[R, P]:
    """The payload `cls` with `build(result)` as its field `name` (null on failure)."""
    return Payload(
        type=cls,
        done=lambda result: cls(**{name: build(result), "user_errors": []}),
        failed=lambda errors: cls(**{name: None, "user_errors": errors}),
    )


@dataclass(frozen=True, slots=True)
class Argument:
    """A mutation argument: its GraphQL type and description.

    `name` is its GraphQL name when that is not the camel-cased Python name; with
    `node`, the argument is a global ID of that type and the call gets its primary key.
    """

    type: Any
    description: str
    name: str | None = None
    node: str | None = None

    def annotation(self) -> Any:
        """The parameter annotation Strawberry reads."""
        return Annotated[
            self.type, strawberry.argument(description=self.description, name=self.name)
        ]


def global_id(node: str, description: str, *, name: str | None = None) -> Argument:
    """An argument holding the global ID of a `node`; the call gets its primary key."""
    return Argument(strawberry.ID, description, name=name, node=node)


def mutation(
    payload: Payload[R, P],
    permission_classes: Sequence[type[BasePermission]] = (),
    *,
    scope: Mapping[str, Any],
    paths: Mapping[str, list[str]] | None = None,
    **arguments: Argument,
) -> Callable[[Callable[..., Awaitable[R]]], Any]:
    """Make the decorated service call a mutation field (see the module docstring).

    `paths` gives the userErrors path of a domain field that is neither an argument
    nor a field of `input`.
    """
    where = {name: [arg.name or _camel_case(name)] for name, arg in arguments.items()}
    where.update(paths or {})
    input_name = INPUT if INPUT in arguments else None

    def field(call: Callable[..., Awaitable[R]]) -> Any:
        async def resolve(info: strawberry.Info, **given: Any) -> P:
            async def run() -> R:
                values = {
                    name: _value(arguments[name], name, value) for name, value in given.items()
                }
                return await call(info.context, **values)

            return await mutate(payload, run, input_name=input_name, paths=where)

        # Strawberry reads a resolver's arguments from its signature (inspect.signature).
        parameters = [
            inspect.Parameter("info", inspect.Parameter.KEYWORD_ONLY, annotation=strawberry.Info)
        ]
        parameters += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=arg.annotation())
            for name, arg in arguments.items()
        ]
        resolve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            parameters, return_annotation=payload.type
        )
        resolve.__name__ = resolve.__qualname__ = call.__name__
        return strawberry.mutation(
            resolver=resolve,
            description=inspect.getdoc(call),
            permission_classes=list(permission_classes),
            metadata=dict(scope),
        )

    return field


def _value(argument: Argument, name: str, value: Any) -> Any:
    if argument.node is None:
        return value
    return decode_id_of(value, argument.node, field=name)


async def mutate(
    payload: Payload[R, P],
    call: Callable[[], Awaitable[R]],
    *,
    input_name: str | None = INPUT,
    paths: Mapping[str, list[str]] | None = None,
) -> P:
    """Run the call; its result, or the DomainError it raised, as the payload."""
    try:
        result = await call()
    except DomainError as error:
        return payload.failed([user_error(error, input_name=input_name, paths=paths)])
    return payload.done(result)


def user_error(
    error: DomainError,
    *,
    input_name: str | None = INPUT,
    paths: Mapping[str, list[str]] | None = None,
) -> UserError:
    """The userError that reports a domain error to the client."""
    return UserError(
        field=field_path(error.field, input_name=input_name, paths=paths),
        message=error.message,
        code=error.kind,
    )


def field_path(
    field: str | None,
    *,
    input_name: str | None = INPUT,
    paths: Mapping[str, list[str]] | None = None,
) -> list[str] | None:
    """Where a domain field sits in the mutation's arguments: `paths[field]`, else in the input."""
    if field is None:
        return None
    if paths is not None and field in paths:
        return paths[field]
    name = _camel_case(field)
    return [input_name, name] if input_name is not None else [name]


def _camel_case(name: str) -> str:
    # As Strawberry names fields and arguments (auto_camel_case): postal_code -> postalCode.
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
