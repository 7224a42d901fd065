"""What query plans do not cover runs on graphql-core, with Strawberry's execution context.

Mutations, subscriptions, introspection, fragment variables and documents past the
plan-variant cap run here, with the same schema, resolvers and permission classes as plans.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLSchema, execute, subscribe

from app.engine.compat import StrawberryGraphQLCoreExecutionContext, is_awaitable


def execute_on_graphql_core(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    context: Any,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    hide_suggestions: bool,
) -> ExecutionResult | Awaitable[ExecutionResult]:
    """graphql-core's `execute` as Strawberry runs it (resolvers get coerced variables)."""
    return execute(
        schema,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        executor_class=StrawberryGraphQLCoreExecutionContext,
        is_awaitable=is_awaitable,  # type: ignore[arg-type]
        hide_suggestions=hide_suggestions,
    )


def subscribe_on_graphql_core(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    context: Any,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    hide_suggestions: bool,
) -> (
    AsyncIterator[ExecutionResult]
    | ExecutionResult
    | Awaitable[AsyncIterator[ExecutionResult] | ExecutionResult]
):
    """graphql-core's `subscribe` as Strawberry runs it: a stream of results, or the errors."""
    return subscribe(
        schema,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        executor_class=StrawberryGraphQLCoreExecutionContext,
        hide_suggestions=hide_suggestions,
    )
