"""Documents prepared once: parsed, checked against the limits, validated, costed.

A prepared document is cached by its text (a bounded LRU in the engine), so a
repeated query costs no parse, no validation and no cost planning. The limit rules
run before the standard ones, so an oversized document costs no more than the limit
checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule

from app.engine.cost import CostModel, CostPlan, QueryTooComplex, plan_operations
from app.engine.errors import too_complex
from app.engine.plan_compile import PlanCache

# The parser's own limits (tokens, nesting) are limits of the document's size: QUERY_TOO_COMPLEX.
_TOO_MANY_TOKENS = "Document contains more than"
_TOO_DEEP = "Document is nested too deeply"


class OperationNotFound(Exception):
    """The document does not say unambiguously which operation to run."""


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


@dataclass(frozen=True, slots=True)
class DocumentRules:
    """What preparing a document checks, and how."""

    limit_rules: tuple[type[ASTValidationRule], ...]
    max_tokens: int | None
    hide_suggestions: bool
    cost_model: CostModel
    query_plans: bool


def prepare_document(schema: GraphQLSchema, query: str, rules: DocumentRules) -> PreparedDocument:
    """Parse, check limits, validate and cost `query` (uncached: the engine caches it)."""
    try:
        document = parse(query, max_tokens=rules.max_tokens)
    except GraphQLError as error:
        reason = error.message.removeprefix("Syntax Error: ")
        if reason.startswith(_TOO_MANY_TOKENS):
            error = too_complex(
                f"The document has more than {rules.max_tokens} tokens; "
                f"the maximum is {rules.max_tokens}"
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
    if rules.limit_rules:
        errors = validate(
            schema, document, rules.limit_rules, hide_suggestions=rules.hide_suggestions
        )
    if not errors:
        errors = validate(
            schema, document, specified_rules, hide_suggestions=rules.hide_suggestions
        )
    if errors:
        return PreparedDocument(document=None, errors=tuple(errors), operations=operations)
    try:
        cost_plans = plan_operations(schema, document, rules.cost_model)
    except QueryTooComplex as error:
        return PreparedDocument(
            document=None, errors=(too_complex(str(error)),), operations=operations
        )
    return PreparedDocument(
        document=document,
        errors=(),
        operations=operations,
        cost_plans=cost_plans,
        query_plans=PlanCache(schema, document, rules.hide_suggestions)
        if rules.query_plans
        else None,
    )
