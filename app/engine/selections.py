"""The one walker of selection sets: fragments, type conditions and @skip/@include.

Limits, cost and query plans all read a document through these functions, so a
fragment spread, an inline fragment or a directive means the same to each of them:

- `collect` gathers the fields of one selection level by response key, as execution
  does (a fragment spread twice in one level, or inside its own expansion, counts
  once), for the type conditions a caller accepts and the directives it includes;
- `fold` measures a selection set with every fragment spread counted in full and each
  fragment measured once (limits: a fragment with 20 aliases spread 3 times is 60).

Whether a `@skip`/`@include` selection is included is the caller's rule: plans know the
request's variables (`included`), cost and limits only literals (`literally_included`),
trusted-document registration what every request selects (`unconditionally_included`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution import VariableValues, get_directive_values

Directives = Sequence[DirectiveNode] | None
# Decides whether a selection with these directives is part of the result.
Include = Callable[[Any], bool]
# Maps the group a selection is in and a fragment's type condition (None: no condition)
# to the group of the fragment's fields, or NOT_APPLICABLE to leave them out.
Narrow = Callable[[Any, str | None], Any]
NOT_APPLICABLE = object()
Grouped = dict[Any, dict[str, list[FieldNode]]]
T = TypeVar("T")


class TooManyFields(Exception):
    """Expanding the document's fragments selects more fields than the cap."""


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """The document's fragment definitions by name."""
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def literally_included(node: Any) -> bool:
    """False only for `@skip(if: true)` or `@include(if: false)`; a variable counts as included."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        for argument in directive.arguments or ():
            if (
                argument.name.value == "if"
                and isinstance(argument.value, BooleanValueNode)
                and argument.value.value is (name == "skip")
            ):
                return False
    return True


def unconditionally_included(node: Any) -> bool:
    """Included whatever the variables: no `@skip`/`@include` reads one, none leaves it out."""
    for directive in node.directives or ():
        if directive.name.value in ("skip", "include") and any(
            not isinstance(argument.value, BooleanValueNode) for argument in directive.arguments
        ):
            return False
    return literally_included(node)


def included(node: Any, variables: VariableValues) -> bool:
    """Whether @skip/@include keep the selection, given coerced variables.

    As graphql-core: a directive argument that is invalid for these values (an explicit
    null for `if: Boolean!`) raises a GraphQLError located at the argument.
    """
    if not node.directives:
        return True
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip and skip["if"] is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include and include["if"] is False)


def collect(
    selection_sets: Iterable[SelectionSetNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    *,
    include: Include,
    narrow: Narrow,
    group: Any = None,
    on_field: Callable[[], None] | None = None,
) -> Grouped:
    """The fields of one level, by group then response key, in document order."""
    grouped: Grouped = {}
    spread: set[str] = set()
    for selection_set in selection_sets:
        _collect_into(grouped, selection_set, fragments, include, narrow, group, spread, on_field)
    return grouped


def _collect_into(
    grouped: Grouped,
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    include: Include,
    narrow: Narrow,
    group: Any,
    spread: set[str],
    on_field: Callable[[], None] | None,
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not include(selection):
                continue
            if on_field is not None:
                on_field()
            key = selection.alias.value if selection.alias else selection.name.value
            grouped.setdefault(group, {}).setdefault(key, []).append(selection)
            continue
        if isinstance(selection, InlineFragmentNode):
            if not include(selection):
                continue
            condition = selection.type_condition
            inner = selection.selection_set
            condition_name = condition.name.value if condition else None
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in spread or not include(selection):
                continue
            fragment = fragments.get(name)
            if fragment is None:
                continue
            spread.add(name)
            inner = fragment.selection_set
            condition_name = fragment.type_condition.name.value
        else:  # pragma: no cover - the parser makes no other selections
            continue
        inner_group = narrow(group, condition_name)
        if inner_group is not NOT_APPLICABLE:
            _collect_into(grouped, inner, fragments, include, narrow, inner_group, spread, on_field)


class Fold:
    """Measures selection sets with fragment spreads counted in full, each fragment once.

    `field(node, below)` is a field's measure given the measure of its own selection
    set (0 without one); `combine` joins the measures of one level (sum or max). A
    fragment inside its own cycle measures 0 (validation reports the cycle).
    """

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        *,
        field: Callable[[FieldNode, int], int],
        combine: Callable[[Iterable[int]], int],
        selection_extra: Callable[[Any], int] = lambda _: 0,
    ) -> None:
        self.fragments = fragments
        self.field = field
        self.combine = combine
        self.selection_extra = selection_extra
        self._done: dict[str, int] = {}
        self._in_progress: set[str] = set()

    def of(self, selection_set: SelectionSetNode) -> int:
        """The measure of a selection set."""
        return self.combine(self._selection(selection) for selection in selection_set.selections)

    def _selection(self, selection: Any) -> int:
        extra = self.selection_extra(selection)
        if isinstance(selection, FieldNode):
            below = self.of(selection.selection_set) if selection.selection_set else 0
            return extra + self.field(selection, below)
        if isinstance(selection, InlineFragmentNode):
            return extra + self.of(selection.selection_set)
        if isinstance(selection, FragmentSpreadNode):
            return extra + self._fragment(selection.name.value)
        return extra  # pragma: no cover - the parser makes no other selections

    def _fragment(self, name: str) -> int:
        known = self._done.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._in_progress:
            return 0
        self._in_progress.add(name)
        value = self.selection_extra(fragment) + self.of(fragment.selection_set)
        self._in_progress.discard(name)
        self._done[name] = value
        return value


__all__ = [
    "NOT_APPLICABLE",
    "Fold",
    "TooManyFields",
    "collect",
    "fragments_of",
    "included",
    "literally_included",
    "unconditionally_included",
]
