"""The engine's front door: prepare a document once, execute it many times.

Strawberry's `Schema.execute` costs ~150 µs of fixed work per request (execution
context, extension runner, result conversion) before a field resolves. Here each
distinct document is prepared once (`documents`: parse, limits, validation, cost) and
kept in a bounded LRU; queries then run from plans compiled once per document and
directive-variable values (`plan_compile`, `plan_run`), and everything else on
graphql-core (`fallback`). Strawberry's types, resolvers and permission classes work
unchanged either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult, GraphQLError, GraphQLSchema, OperationType
from graphql.execution import VariableValues, get_variable_values
from graphql.validation import ASTValidationRule
from strawberry.schema import Schema

from app.engine.cache_hints import CachePolicy, operation_policy
from app.engine.compat import ENGINE_DISTRIBUTIONS, check_installed, core_schema
from app.engine.cost import CostModel
from app.engine.deadlines import DeadlinePassed, finish_by
from app.engine.documents import (
    DocumentCache,
    DocumentRules,
    OperationNotFound,
    PreparedDocument,
    prepare_document,
)
from app.engine.fallback import execute_on_graphql_core, subscribe_on_graphql_core
from app.engine.plan_compile import OperationPlan
from app.engine.plan_run import PlanRun
from app.engine.requirements import Required, RequiredMetadata


class OperationTimeout(Exception):
    """The operation did not finish within its time and was cancelled."""


class GraphQLExecutor:
    """Prepares documents (bounded LRU) and executes them against the schema."""

    def __init__(
        self,
        schema: Schema,
        *,
        cache_size: int,
        cache_bytes: int = 20_000_000,
        max_cached_document_bytes: int = 100_000,
        extra_rules: tuple[type[ASTValidationRule], ...] = (),
        max_tokens: int | None = None,
        hide_suggestions: bool = False,
        cost_model: CostModel | None = None,
        query_plans: bool = True,
    ) -> None:
        check_installed(ENGINE_DISTRIBUTIONS)
        self.schema = schema
        self.core_schema: GraphQLSchema = core_schema(schema)
        self.hide_suggestions = hide_suggestions
        self.rules = DocumentRules(
            limit_rules=extra_rules,
            max_tokens=max_tokens,
            hide_suggestions=hide_suggestions,
            cost_model=cost_model or CostModel(default_page_size=20, max_page_size=100),
            query_plans=query_plans,
        )
        self.documents = DocumentCache(
            self._prepare,
            max_entries=cache_size,
            max_bytes=cache_bytes,
            max_document_bytes=max_cached_document_bytes,
        )
        self.prepare: Callable[[str], PreparedDocument] = self.documents

    def _prepare(self, query: str) -> PreparedDocument:
        return prepare_document(self.core_schema, query, self.rules)

    def required(
        self,
        prepared: PreparedDocument,
        key: str,
        *,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> Required:
        """What the chosen operation of a valid document requires: the values that the fields
        it selects declare under metadata `key`, each with the fields declaring it.

        Computed once per operation and @skip/@include variable values, kept with the document.
        """
        assert prepared.document is not None
        found = prepared.requirements.get(key)
        if found is None:
            found = RequiredMetadata(self.core_schema, prepared.document, key)
            prepared.requirements[key] = found
        return found.of(prepared.operation(operation_name), variables)

    def cache_policy(self, prepared: PreparedDocument, operation_name: str | None) -> CachePolicy:
        """The combined cache hints of the operation to run (a valid document; computed once)."""
        policies = prepared.cache_policies
        policy = policies.get(operation_name)
        if policy is None:
            assert prepared.document is not None
            operation = prepared.operation(operation_name)
            policy = operation_policy(self.core_schema, prepared.document, operation)
            policies[operation_name] = policy
        return policy

    async def execute(
        self,
        prepared: PreparedDocument,
        *,
        context: Any,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        time_limit: float | None = None,
    ) -> ExecutionResult:
        """Run a valid prepared document; OperationTimeout after `time_limit` seconds.

        The clock covers the asynchronous part: a synchronous run cannot be interrupted,
        and not arming a timer for it keeps `{ __typename }`-sized requests cheap.
        """
        assert prepared.document is not None
        result = self._execute_planned(prepared, context, variables, operation_name)
        if result is None:
            result = execute_on_graphql_core(
                self.core_schema,
                prepared.document,
                context=context,
                variables=variables,
                operation_name=operation_name,
                hide_suggestions=self.hide_suggestions,
            )
        if isawaitable(result):
            if time_limit is None:
                result = await result
            else:
                deadline = asyncio.get_running_loop().time() + time_limit
                try:
                    result = await finish_by(result, deadline)
                except DeadlinePassed:
                    raise OperationTimeout(f"not finished within {time_limit:g} s") from None
        assert isinstance(result, ExecutionResult)
        return result

    async def subscribe(
        self,
        prepared: PreparedDocument,
        *,
        context: Any,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> AsyncIterator[ExecutionResult] | ExecutionResult:
        """Start a subscription of a valid prepared document: its results, or why it cannot start.

        Each event's results are executed by graphql-core as they come; the stream raises
        what the field's source raises (a permission refused, a failure), for the
        transport to report.
        """
        assert prepared.document is not None
        started = subscribe_on_graphql_core(
            self.core_schema,
            prepared.document,
            context=context,
            variables=variables,
            operation_name=operation_name,
            hide_suggestions=self.hide_suggestions,
        )
        if isawaitable(started):
            started = await started
        return started

    def _execute_planned(
        self,
        prepared: PreparedDocument,
        context: Any,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> ExecutionResult | Awaitable[ExecutionResult] | None:
        """A query run from its compiled plan; None when graphql-core must run it."""
        plans = prepared.query_plans
        if plans is None:
            return None
        try:
            operation = prepared.operation(operation_name)
        except OperationNotFound:  # graphql-core says so in its own words
            return None
        if operation.operation is not OperationType.QUERY:
            return None
        coerced = self._coerce_variables(operation, variables)
        if isinstance(coerced, list):
            return ExecutionResult(data=None, errors=coerced)
        plan = plans.plan(operation, coerced)
        if plan is None:
            return None
        if isinstance(plan, GraphQLError):  # the root selection fails for these variables
            return ExecutionResult(data=None, errors=[plan])
        return _run(plan, context, coerced)

    def _coerce_variables(
        self, operation: Any, inputs: dict[str, Any] | None
    ) -> VariableValues | list[GraphQLError]:
        """The operation's variables coerced as graphql-core does, or the request errors."""
        return get_variable_values(
            self.core_schema,
            operation.variable_definitions or (),
            inputs or {},
            max_errors=50,
            hide_suggestions=self.hide_suggestions,
        )


async def _run(plan: OperationPlan, context: Any, variables: VariableValues) -> ExecutionResult:
    return await PlanRun(plan, context, variables).run()


__all__ = ["GraphQLExecutor", "OperationNotFound", "OperationTimeout", "PreparedDocument"]
