"""Runs GraphQL operations: a bounded cache of parsed and validated documents, then execution.

Strawberry's `Schema.execute` costs ~150 µs of fixed work per request (execution
context, extension runner, result conversion) before a field resolves; graphql-core
on a cached document needs ~35 µs. So the HTTP path prepares each distinct
document once (parse, validate, index its operations, plan its cost). Queries then run
from plans compiled once per document (`graphql_plans`); mutations and what plans do
not cover run on graphql-core's `execute` with Strawberry's executor class (and a
shortcut for plain fields). Strawberry's types, resolvers and permission classes work
unchanged either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from inspect import isawaitable
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    execute,
    get_named_type,
    is_leaf_type,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import Path
from graphql.validation import ASTValidationRule
from strawberry.execution import optimized_is_awaitable
from strawberry.schema import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from app.engine.cost import CostModel, CostPlan, QueryTooComplex, plan_operations
from app.engine.limits import too_complex
from app.engine.plans import PlanCache, coerce_variables, execute_plan

_SLOW = object()  # "let graphql-core complete this field"


class PlainField(NamedTuple):
    """A field that only reads an attribute: a leaf (with its serializer) or a value object."""

    python_name: str
    nullable: bool
    serialize: Callable[[Any], Any] | None
    object_type: GraphQLObjectType | None = None


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document parsed and validated once: either errors, or its operations by name."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    operations: dict[str | None, OperationDefinitionNode]
    cost_plans: dict[str | None, CostPlan] = dataclass_field(default_factory=dict)
    query_plans: PlanCache | None = None

    def operation(self, name: str | None) -> OperationDefinitionNode:
        """The operation to run; OperationNotFound if it cannot be chosen."""
        if name is None:
            if len(self.operations) != 1:
                raise OperationNotFound("The document has several operations: send `operationName`")
            return next(iter(self.operations.values()))
        try:
            return self.operations[name]
        except KeyError:
            raise OperationNotFound(f"The document has no operation named {name[:100]!r}") from None

    def operation_type(self, name: str | None) -> OperationType:
        """The type of the operation to run; OperationNotFound if it cannot be chosen."""
        return self.operation(name).operation

    def cost_plan(self, name: str | None) -> CostPlan:
        """The cost plan of the operation to run (a valid document, operation chosen)."""
        if name is None:
            return next(iter(self.cost_plans.values()))
        return self.cost_plans[name]


class OperationNotFound(Exception):
    """The document does not say unambiguously which operation to run."""


class OperationTimeout(Exception):
    """The operation did not finish within its time and was cancelled."""


def plain_fields(schema: GraphQLSchema) -> dict[str, dict[str, PlainField]]:
    """Per object type: the fields that just read an attribute (no resolver, no extension).

    Leaves (scalar or enum) carry their serializer; objects carry their type, and only
    object types without an `is_type_of` check qualify.
    """
    table: dict[str, dict[str, PlainField]] = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        plain: dict[str, PlainField] = {}
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
                continue
            named = get_named_type(field.type)
            nullable = not isinstance(field.type, GraphQLNonNull)
            inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if is_leaf_type(named):
                plain[field_name] = PlainField(definition.python_name, nullable, named.serialize)
            elif isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
                plain[field_name] = PlainField(definition.python_name, nullable, None, inner)
        if plain:
            table[type_name] = plain
    return table


class PlainFieldExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with a shortcut for plain-attribute fields.

    Most fields of a typical listing are read straight from an attribute: leaves
    (`name`, `price.amount`) and small value objects (`price`, `priceRange`).
    graphql-core runs each through resolve info, a resolver, a path and value
    completion; here leaves are read and serialized directly, and value objects have
    their fields executed directly. Anything unusual (null where not allowed, a
    serializer that fails) takes the normal path, and a failing value object is
    handled by graphql-core's own `handle_field_error`, so errors, their paths and
    null propagation are exactly graphql-core's.
    """

    plain: dict[str, dict[str, PlainField]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        """Resolve plain fields directly, the rest as graphql-core does; keep selection order."""
        plain = self.plain.get(parent_type.name)
        if plain is None or self.middleware_manager is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        fast: dict[str, Any] = {}
        slow: GroupedFieldSet = {}
        for response_name, field_details_list in grouped_field_set.items():
            field = plain.get(field_details_list[0].node.name.value)
            if field is not None:
                value = getattr(source_value, field.python_name, None)
                if value is None:
                    if field.nullable:
                        fast[response_name] = None
                        continue
                elif field.serialize is not None:
                    try:
                        serialized = field.serialize(value)
                    except Exception:
                        serialized = None
                    if serialized is not None and serialized is not Undefined:
                        fast[response_name] = serialized
                        continue
                else:
                    completed = self._complete_plain_object(
                        field,
                        value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                    )
                    if completed is not _SLOW:
                        fast[response_name] = completed
                        continue
            slow[response_name] = field_details_list
        if not slow:
            return fast
        rest = super().execute_fields(parent_type, source_value, path, slow, position_context)
        if isinstance(rest, dict):
            return _in_selection_order(grouped_field_set, fast, rest)

        async def merged() -> dict[str, Any]:
            return _in_selection_order(grouped_field_set, fast, await rest)

        return merged()

    def _complete_plain_object(
        self,
        field: PlainField,
        value: Any,
        field_details_list: Any,
        field_path: Path,
    ) -> Any:
        """A value object's fields, executed directly; _SLOW when graphql-core should do it.

        Only objects whose selected fields are all plain qualify: nothing async can run,
        so the result is ready at once and nothing runs twice.
        """
        object_type = field.object_type
        assert object_type is not None
        grouped, defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        plain = self.plain.get(object_type.name)
        if defer_usages or plain is None:
            return _SLOW
        for details in grouped.values():
            if details[0].node.name.value not in plain:
                return _SLOW
        try:
            completed = self.execute_fields(object_type, value, field_path, grouped, None)
        except Exception as raw_error:
            # As graphql-core's execute_field would: raise on, or record and null out.
            return_type = object_type if field.nullable else GraphQLNonNull(object_type)
            self.handle_field_error(raw_error, return_type, field_details_list, field_path)
            return None
        if not isinstance(completed, dict):  # cannot happen: every selected field is plain
            completed.close()
            return _SLOW
        return completed


def _in_selection_order(
    grouped_field_set: GroupedFieldSet, fast: dict[str, Any], rest: dict[str, Any]
) -> dict[str, Any]:
    if not fast:
        return rest
    return {
        name: fast[name] if name in fast else rest[name]
        for name in grouped_field_set
        if name in fast or name in rest
    }


# The parser's own limits (tokens, nesting) are limits of the document's size: QUERY_TOO_COMPLEX.
_TOO_MANY_TOKENS = "Document contains more than"
_TOO_DEEP = "Document is nested too deeply"


class GraphQLExecutor:
    """Prepares documents (bounded LRU) and executes them against the schema.

    Preparing runs `extra_rules` (the query limits) first and the standard rules only
    when those pass, so an oversized document costs no more than the limit checks;
    then it plans each operation's cost. All of it happens once per distinct document.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        cache_size: int,
        extra_rules: tuple[type[ASTValidationRule], ...] = (),
        max_tokens: int | None = None,
        hide_suggestions: bool = False,
        cost_model: CostModel | None = None,
        query_plans: bool = True,
    ) -> None:
        self.schema = schema
        self.query_plans = query_plans
        self.core_schema: GraphQLSchema = schema._schema
        self.limit_rules = extra_rules
        self.rules = tuple(specified_rules)
        self.max_tokens = max_tokens
        self.hide_suggestions = hide_suggestions
        self.cost_model = cost_model or CostModel(default_page_size=20, max_page_size=100)
        self._executor_class = type(
            "ShopgraphExecutionContext",
            (PlainFieldExecutionContext,),
            {"plain": plain_fields(self.core_schema)},
        )
        self.prepare: Callable[[str], PreparedDocument] = (
            lru_cache(maxsize=cache_size)(self._prepare) if cache_size else self._prepare
        )

    def _prepare(self, query: str) -> PreparedDocument:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError as error:
            reason = error.message.removeprefix("Syntax Error: ")
            if reason.startswith(_TOO_MANY_TOKENS):
                error = too_complex(
                    f"The document has more than {self.max_tokens} tokens; "
                    f"the maximum is {self.max_tokens}"
                )
            elif reason.startswith(_TOO_DEEP):
                error = too_complex(reason.removesuffix(" Parsing aborted."))
            return PreparedDocument(document=None, errors=(error,), operations={})
        # Operations are indexed even when validation fails: the HTTP layer refuses a
        # mutation over GET (405) before it reports validation errors.
        operations = {
            definition.name.value if definition.name else None: definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        errors: list[GraphQLError] = []
        if self.limit_rules:
            errors = validate(
                self.core_schema,
                document,
                self.limit_rules,
                hide_suggestions=self.hide_suggestions,
            )
        if not errors:
            errors = validate(
                self.core_schema, document, self.rules, hide_suggestions=self.hide_suggestions
            )
        if errors:
            return PreparedDocument(document=None, errors=tuple(errors), operations=operations)
        try:
            plans = plan_operations(self.core_schema, document, self.cost_model)
        except QueryTooComplex as error:
            return PreparedDocument(
                document=None, errors=(too_complex(str(error)),), operations=operations
            )
        return PreparedDocument(
            document=document,
            errors=(),
            operations=operations,
            cost_plans=plans,
            query_plans=PlanCache(self.core_schema, document, self.hide_suggestions)
            if self.query_plans
            else None,
        )

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
            result = execute(
                self.core_schema,
                prepared.document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                executor_class=self._executor_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                hide_suggestions=self.hide_suggestions,
            )
        if isawaitable(result):
            if time_limit is None:
                result = await result
            else:
                deadline = asyncio.timeout(time_limit)
                try:
                    async with deadline:
                        result = await result
                except TimeoutError:
                    if deadline.expired():
                        raise OperationTimeout(f"not finished within {time_limit:g} s") from None
                    raise
        assert isinstance(result, ExecutionResult)
        return result

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
        coerced = coerce_variables(self.core_schema, operation, variables, self.hide_suggestions)
        if isinstance(coerced, list):
            return ExecutionResult(data=None, errors=coerced)
        plan = plans.plan(operation, coerced)
        if plan is None:
            return None
        return execute_plan(plan, context, coerced)
