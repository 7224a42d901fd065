"""Parts of a plan run that need no run state: a level's loader call, abstract types."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from graphql import GraphQLAbstractType, GraphQLError, GraphQLObjectType, GraphQLSchema
from graphql.pyutils import inspect

from app.engine.plan_compile import FieldPlan


def start_batch(
    field_plan: FieldPlan, parents: list[Any], context: Any
) -> tuple[list[Any], Awaitable[list[Any]] | None]:
    """Each parent's key (or the error making it), and one loader call for them all.

    No call when no parent has a key to load.
    """
    batch = field_plan.batch
    assert batch is not None
    keys: list[Any] = []
    for parent in parents:
        try:
            keys.append(batch.key(parent))
        except Exception as raw_error:
            keys.append(raw_error)
    wanted = [key for key in keys if key is not None and not isinstance(key, Exception)]
    if not wanted:
        return keys, None
    try:
        load: Awaitable[list[Any]] = batch.loader(context).load_many(wanted)
    except Exception as raw_error:
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(raw_error)
        load = failed
    return keys, load


def runtime_type_of(
    schema: GraphQLSchema,
    type_name: Any,
    abstract_type: GraphQLAbstractType,
    field_plan: FieldPlan,
    value: Any,
) -> GraphQLObjectType:
    """The object type an abstract field's value resolved to, checked as graphql-core checks it."""
    field_name = f"{field_plan.parent_type.name}.{field_plan.name}"
    if type_name is None:
        raise GraphQLError(
            f"Abstract type '{abstract_type}' must resolve to an Object type at runtime"
            f" for field '{field_name}'. Either the '{abstract_type}' type should provide"
            " a 'resolve_type' function or each possible type should provide"
            " an 'is_type_of' function.",
            field_plan.nodes,
        )
    if not isinstance(type_name, str):
        raise GraphQLError(
            f"Abstract type '{abstract_type}' must resolve to an Object type at runtime"
            f" for field '{field_name}' with value {inspect(value)},"
            f" received '{inspect(type_name)}', which is not a valid Object type name.",
            field_plan.nodes,
        )
    runtime_type = schema.get_type(type_name)
    if runtime_type is None:
        raise GraphQLError(
            f"Abstract type '{abstract_type}' was resolved to a type"
            f" '{type_name}' that does not exist inside the schema.",
            field_plan.nodes,
        )
    if not isinstance(runtime_type, GraphQLObjectType):
        raise GraphQLError(
            f"Abstract type '{abstract_type}' was resolved to a non-object type '{type_name}'.",
            field_plan.nodes,
        )
    if not schema.is_sub_type(abstract_type, runtime_type):
        raise GraphQLError(
            f"Runtime Object type '{runtime_type}' is not a possible type for '{abstract_type}'.",
            field_plan.nodes,
        )
    return runtime_type
