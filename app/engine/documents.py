"""Documents prepared once: parsed, checked against the limits, validated, costed.

A prepared document is cached by its text (a bounded LRU in the engine), so a
repeated query costs no parse, no validation and no cost planning. The limit rules
run before the standard ones, so an oversized document costs no more than the limit
checks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    Visitor,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.validation import ASTValidationRule

from app.engine.cache_hints import CachePolicy
from app.engine.cost import CostModel, CostPlan, QueryTooComplex, plan_operations
from app.engine.errors import ErrorCode, too_complex
from app.engine.plan_compile import PlanCache
from app.engine.requirements import RequiredMetadata

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
    # Filled on first use, per metadata key (see GraphQLExecutor.required).
    requirements: dict[str, RequiredMetadata] = dataclass_field(default_factory=dict)
    # Each operation's cache hints, combined on first use (GraphQLExecutor.cache_policy).
    cache_policies: dict[str | None, CachePolicy] = dataclass_field(default_factory=dict)

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
    if not errors and "\\u" in query:  # only an escape can put U+0000 in a GraphQL string
        errors = _nul_literals(document)
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


NUL = "\x00"


def nul_error(where: str) -> GraphQLError:
    """The BAD_USER_INPUT error of a string holding U+0000 (PostgreSQL text cannot store it)."""
    return GraphQLError(
        f"{where} holds the character U+0000 (NUL), which cannot be stored; remove it",
        extensions={"code": ErrorCode.BAD_USER_INPUT.value},
    )


class _NulFinder(Visitor):
    """Collects the arguments whose string literals hold U+0000."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[GraphQLError] = []

    def enter_string_value(
        self,
        node: StringValueNode,
        key: object,
        parent: object,
        path: object,
        ancestors: list[object],
    ) -> None:
        if NUL not in node.value:
            return
        names = [
            ancestor.name.value
            for ancestor in ancestors
            if isinstance(ancestor, ArgumentNode | ObjectFieldNode)
        ]
        if isinstance(parent, ArgumentNode | ObjectFieldNode):
            names.append(parent.name.value)
        where = f"Argument `{'.'.join(names)}`" if names else "A string literal"
        self.errors.append(nul_error(where))


def _nul_literals(document: DocumentNode) -> list[GraphQLError]:
    finder = _NulFinder()
    visit(document, finder)
    return finder.errors


class DocumentCache:
    """A least-recently-used cache of prepared documents, bounded in count and in bytes.

    The bytes are those of the query text (a parsed document is a fixed multiple of
    it); a document over `max_document_bytes` is prepared but never kept, so distinct
    large documents cannot grow a worker's memory. Pinned documents (trusted documents,
    registered by an operator: their number is the operator's) are kept outside the LRU
    and never evicted, so a flood of other documents cannot make them pay a parse again.
    """

    def __init__(
        self,
        prepare: Callable[[str], PreparedDocument],
        *,
        max_entries: int,
        max_bytes: int,
        max_document_bytes: int,
    ) -> None:
        self._prepare = prepare
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_document_bytes = min(max_document_bytes, max_bytes)
        self._entries: OrderedDict[str, PreparedDocument] = OrderedDict()
        self._pinned: dict[str, PreparedDocument] = {}
        self.bytes = 0
        self.prepared = 0  # documents prepared (parsed) so far: a cache miss each

    def __contains__(self, query: object) -> bool:
        return query in self._pinned or query in self._entries

    def pin(self, query: str) -> PreparedDocument:
        """The prepared document of `query`, prepared at most once and then kept for good."""
        found = self._pinned.get(query)
        if found is None:
            found = self._entries.pop(query, None)
            if found is None:
                self.prepared += 1
                found = self._prepare(query)
            else:
                self.bytes -= len(query)
            self._pinned[query] = found
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def __call__(self, query: str) -> PreparedDocument:
        """The prepared document of `query`, from the cache or prepared now."""
        entries = self._entries
        found = entries.get(query)
        if found is not None:
            entries.move_to_end(query)
            return found
        pinned = self._pinned.get(query)
        if pinned is not None:
            return pinned
        self.prepared += 1
        prepared = self._prepare(query)
        size = len(query)
        if self.max_entries <= 0 or size > self.max_document_bytes:
            return prepared
        entries[query] = prepared
        self.bytes += size
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            evicted, _ = entries.popitem(last=False)
            self.bytes -= len(evicted)
        return prepared
