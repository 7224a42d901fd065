"""What a document must pass to become a trusted document: everything a request is checked
for before it runs (parse, limits, validation, cost), once, at registration.

The cost of a registered document is taken at its largest: every page size or list
length read from a variable is assumed at the maximum page size, so a trusted document
is never refused as too costly at run time, whatever variables it is sent with.

What a registered document's operations require (partner scopes, say) is read off the
fields they select whatever the variables (`always_required`): a field under a
`@skip`/`@include` that reads a variable may never be selected, so only a request decides.
"""

from __future__ import annotations

from typing import Any

from graphql import ListTypeNode, NonNullTypeNode, OperationDefinitionNode, TypeNode

from app.engine.cost import CostPlan
from app.engine.errors import client_error
from app.engine.executor import GraphQLExecutor
from app.engine.requirements import Required, RequiredMetadata


def largest_variables(operation: OperationDefinitionNode, size: int) -> dict[str, Any]:
    """Variables that make every variable-sized page or list of `operation` `size` long."""
    variables: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        type_node: TypeNode = definition.type
        if isinstance(type_node, NonNullTypeNode):
            type_node = type_node.type
        # A page size is an Int (`first`, `last`); a list argument's length is its size.
        variables[definition.variable.name.value] = (
            [None] * size if isinstance(type_node, ListTypeNode) else size
        )
    return variables


def largest_cost(plan: CostPlan, operation: OperationDefinitionNode) -> int:
    """The most this operation can cost, whatever its variables."""
    return plan.requested(largest_variables(operation, plan.model.max_page_size))


def registration_problem(
    executor: GraphQLExecutor, query: str, *, max_cost: int, max_bytes: int
) -> str | None:
    """Why `query` cannot be registered as a trusted document, or None when it can."""
    size = len(query.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return f"the document is {size} bytes long; the maximum is {max_bytes}"
    prepared = executor.prepare(query)
    if prepared.errors:
        error = client_error(prepared.errors[0], request_id="registration")
        code = (error.extensions or {}).get("code")
        return f"{code}: {error.message}"
    if not prepared.operations:
        return "the document has no operation"
    for name, operation in prepared.operations.items():
        cost = largest_cost(prepared.cost_plans[name], operation)
        if cost > max_cost:
            shown = f"operation {name!r}" if name else "the operation"
            return (
                f"QUERY_TOO_COMPLEX: {shown} can cost {cost} points (variable page sizes at "
                f"their maximum); the maximum is {max_cost}"
            )
    return None


def always_required(executor: GraphQLExecutor, query: str, key: str) -> dict[str | None, Required]:
    """What each operation of a valid document requires under metadata `key` with any variables.

    QueryTooComplex if its fragments expand to too many fields.
    """
    prepared = executor.prepare(query)
    assert prepared.document is not None and not prepared.errors, "a valid document"
    required = RequiredMetadata(executor.core_schema, prepared.document, key)
    return {name: required.always(operation) for name, operation in prepared.operations.items()}


__all__ = ["always_required", "largest_cost", "largest_variables", "registration_problem"]
