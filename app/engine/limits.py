"""Query limits as graphql-core validation rules: depth, aliases and directives per operation.

Each rule measures every operation with its fragment spreads expanded (a fragment
with 20 aliases spread 3 times counts 60) through `selections.Fold`, which measures
each fragment once, so a document is walked once however often its fragments are
spread. A fragment cycle counts as empty here; graphql-core's NoFragmentCyclesRule
reports it. The engine runs these rules before the standard ones and caches the
outcome per document, so they cost nothing per request. Token counts are limited by
the parser (`parse(max_tokens=...)`), and introspection by NoSchemaIntrospectionCustomRule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    FieldNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
)
from graphql.validation import ASTValidationRule

from app.engine.errors import too_complex
from app.engine.selections import Fold, fragments_of

# Introspection wraps types in `ofType` for each list and non-null level; those levels
# are not nesting a client chose, so they do not count towards the depth (GraphiQL's
# classic deep introspection query).
DEPTH_FREE_FIELDS = frozenset({"ofType"})


def _deepest(values: Iterable[int]) -> int:
    return max(values, default=0)


def _depth(node: FieldNode, below: int) -> int:
    return below if node.name.value in DEPTH_FREE_FIELDS else 1 + below


def _aliases(node: FieldNode, below: int) -> int:
    return below + (1 if node.alias is not None else 0)


def _directives(node: Any) -> int:
    return len(node.directives or ())


def _operation_directives(operation: OperationDefinitionNode) -> int:
    variables = sum(
        len(variable.directives or ()) for variable in operation.variable_definitions or ()
    )
    return len(operation.directives or ()) + variables


class OperationLimitRule(ASTValidationRule):
    """Measures each operation once (fragments expanded) and reports those over `maximum`."""

    maximum: ClassVar[int]
    counts_directives: ClassVar[bool] = False

    def fold(self, document: DocumentNode) -> Fold:
        """This rule's measure, over the document's fragments."""
        raise NotImplementedError

    def describe(self, operation: str, value: int) -> str:
        """The error message for an operation measuring `value`."""
        raise NotImplementedError

    def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
        """Measure every operation of the document; the rule has nothing more to visit."""
        fold = self.fold(node)
        for definition in node.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            value = fold.of(definition.selection_set)
            if self.counts_directives:
                value += _operation_directives(definition)
            if value > self.maximum:
                name = f"'{definition.name.value}'" if definition.name else "The operation"
                self.report_error(too_complex(self.describe(name, value), definition))
        return self.BREAK


class MaxDepthRule(OperationLimitRule):
    """Operations nest at most `maximum` fields deep (fragments followed, introspection too)."""

    def fold(self, document: DocumentNode) -> Fold:
        """Fields on the deepest path."""
        return Fold(fragments_of(document), field=_depth, combine=_deepest)

    def describe(self, operation: str, value: int) -> str:
        """Depth message."""
        return f"{operation} is {value} fields deep; the maximum depth is {self.maximum}"


class MaxAliasesRule(OperationLimitRule):
    """Operations use at most `maximum` aliases, fragment spreads counted in full."""

    def fold(self, document: DocumentNode) -> Fold:
        """Aliased fields."""
        return Fold(fragments_of(document), field=_aliases, combine=sum)

    def describe(self, operation: str, value: int) -> str:
        """Alias message."""
        return (
            f"{operation} uses {value} aliases (fragment spreads counted in full); "
            f"the maximum is {self.maximum}"
        )


class MaxDirectivesRule(OperationLimitRule):
    """Operations use at most `maximum` directives, fragment spreads counted in full."""

    counts_directives = True

    def fold(self, document: DocumentNode) -> Fold:
        """Directives on selections and fragment definitions."""
        return Fold(
            fragments_of(document),
            field=lambda _node, below: below,
            combine=sum,
            selection_extra=_directives,
        )

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
    "validation_rules",
]
