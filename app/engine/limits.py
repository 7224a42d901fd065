"""Query limits as graphql-core validation rules: depth, aliases and directives per operation.

Each rule measures every operation with its fragment spreads expanded (a fragment
with 20 aliases spread 3 times counts 60), remembering each fragment's measure, so
a document is walked once however often its fragments are spread. A fragment cycle
counts as empty here; graphql-core's NoFragmentCyclesRule reports it. The executor
runs these rules before the standard ones and caches the outcome per document, so
they cost nothing per request. Token counts are limited by the parser
(`parse(max_tokens=...)`), and introspection by NoSchemaIntrospectionCustomRule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.language import DocumentNode
from graphql.validation import ASTValidationRule

from app.engine.errors import ErrorCode

# `ofType` chains end at a named type within a few steps (the schema's list and non-null
# wrappers), and every introspection client asks for ~7 of them: they do not add depth.
# All other introspection fields do (`__type { fields { type { fields ... } } }` is the
# classic deep introspection query).
DEPTH_FREE_FIELDS = frozenset({"ofType"})

Measure = Callable[[SelectionSetNode, Callable[[str], int]], int]


def too_complex(message: str, nodes: Any = None) -> GraphQLError:
    """A QUERY_TOO_COMPLEX error, refused before execution."""
    return GraphQLError(message, nodes, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})


class _FragmentMeasures:
    """A measure of each fragment, computed once; a fragment inside its own cycle counts 0."""

    def __init__(
        self, document: DocumentNode, measure: Measure, *, with_own_directives: bool
    ) -> None:
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.measure = measure
        self.with_own_directives = with_own_directives
        self.done: dict[str, int] = {}
        self.in_progress: set[str] = set()

    def of(self, name: str) -> int:
        """The measure of the named fragment (0 when unknown or cyclic)."""
        known = self.done.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.in_progress:
            return 0
        self.in_progress.add(name)
        value = self.measure(fragment.selection_set, self.of)
        if self.with_own_directives:
            value += len(fragment.directives or ())
        self.in_progress.discard(name)
        self.done[name] = value
        return value


def selection_depth(selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
    """Fields on the deepest path below (and including) this selection set."""
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            below = (
                selection_depth(selection.selection_set, fragment) if selection.selection_set else 0
            )
            depth = below if selection.name.value in DEPTH_FREE_FIELDS else 1 + below
        elif isinstance(selection, InlineFragmentNode):
            depth = selection_depth(selection.selection_set, fragment)
        elif isinstance(selection, FragmentSpreadNode):
            depth = fragment(selection.name.value)
        else:  # pragma: no cover - the parser makes no other selections
            continue
        deepest = max(deepest, depth)
    return deepest


def alias_count(selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
    """Aliased fields in this selection set, each fragment spread counted in full."""
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += 1 if selection.alias is not None else 0
            if selection.selection_set:
                total += alias_count(selection.selection_set, fragment)
        elif isinstance(selection, InlineFragmentNode):
            total += alias_count(selection.selection_set, fragment)
        elif isinstance(selection, FragmentSpreadNode):
            total += fragment(selection.name.value)
    return total


def directive_count(selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
    """Directives used in this selection set, each fragment spread counted in full."""
    total = 0
    for selection in selection_set.selections:
        total += len(selection.directives or ())
        if isinstance(selection, FieldNode):
            if selection.selection_set:
                total += directive_count(selection.selection_set, fragment)
        elif isinstance(selection, InlineFragmentNode):
            total += directive_count(selection.selection_set, fragment)
        elif isinstance(selection, FragmentSpreadNode):
            total += fragment(selection.name.value)
    return total


def _operation_directives(operation: OperationDefinitionNode) -> int:
    variables = sum(
        len(variable.directives or ()) for variable in operation.variable_definitions or ()
    )
    return len(operation.directives or ()) + variables


class OperationLimitRule(ASTValidationRule):
    """Measures each operation once (fragments expanded) and reports those over `maximum`."""

    maximum: ClassVar[int]
    counts_fragment_directives: ClassVar[bool] = False

    def measure(self, selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
        """This rule's measure of a selection set."""
        raise NotImplementedError

    def describe(self, operation: str, value: int) -> str:
        """The error message for an operation measuring `value`."""
        raise NotImplementedError

    def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
        """Measure every operation of the document; the rule has nothing more to visit."""
        measure = self.measure
        fragments = _FragmentMeasures(
            node, measure, with_own_directives=self.counts_fragment_directives
        )
        for definition in node.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            value = measure(definition.selection_set, fragments.of)
            if self.counts_fragment_directives:
                value += _operation_directives(definition)
            if value > self.maximum:
                name = f"'{definition.name.value}'" if definition.name else "The operation"
                self.report_error(too_complex(self.describe(name, value), definition))
        return self.BREAK


class MaxDepthRule(OperationLimitRule):
    """Operations nest at most `maximum` fields deep (fragments followed, introspection too)."""

    def measure(self, selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
        """See `selection_depth`."""
        return selection_depth(selection_set, fragment)

    def describe(self, operation: str, value: int) -> str:
        """Depth message."""
        return f"{operation} is {value} fields deep; the maximum depth is {self.maximum}"


class MaxAliasesRule(OperationLimitRule):
    """Operations use at most `maximum` aliases, fragment spreads counted in full."""

    def measure(self, selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
        """See `alias_count`."""
        return alias_count(selection_set, fragment)

    def describe(self, operation: str, value: int) -> str:
        """Alias message."""
        return (
            f"{operation} uses {value} aliases (fragment spreads counted in full); "
            f"the maximum is {self.maximum}"
        )


class MaxDirectivesRule(OperationLimitRule):
    """Operations use at most `maximum` directives, fragment spreads counted in full."""

    counts_fragment_directives = True

    def measure(self, selection_set: SelectionSetNode, fragment: Callable[[str], int]) -> int:
        """See `directive_count`."""
        return directive_count(selection_set, fragment)

    def describe(self, operation: str, value: int) -> str:
        """Directive message."""
        return (
            f"{operation} uses {value} directives (fragment spreads counted in full); "
            f"the maximum is {self.maximum}"
        )


def _with_maximum(rule: type[OperationLimitRule], maximum: int) -> type[ASTValidationRule]:
    return type(rule.__name__, (rule,), {"maximum": maximum})


@dataclass(frozen=True, slots=True)
class Limits:
    """The numbers a document must stay within (from settings, in the app's wiring)."""

    max_depth: int
    max_aliases: int
    max_directives: int
    max_tokens: int
    introspection: bool


def validation_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """The limit rules for these numbers (introspection refused unless enabled)."""
    rules = [
        _with_maximum(MaxDepthRule, limits.max_depth),
        _with_maximum(MaxAliasesRule, limits.max_aliases),
        _with_maximum(MaxDirectivesRule, limits.max_directives),
    ]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


__all__ = [
    "Limits",
    "MaxAliasesRule",
    "MaxDepthRule",
    "MaxDirectivesRule",
    "too_complex",
    "validation_rules",
]
