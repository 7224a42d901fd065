"""Cache hints: `@cacheControl(maxAge, scope, inheritMaxAge)` on types and fields, as Apollo has.

An operation's policy is computed once per document and operation, from the fields it
selects (fragments inlined), with Apollo's rules:

- a field's own hint wins over the hint of the type it returns;
- a field with no hint that returns an object, interface or union, and every root field
  with no hint, gets maxAge 0 (the default: nothing is cacheable unless declared);
  a leaf field with no hint, and a hint with `inheritMaxAge`, restrict nothing;
- the operation's maxAge is the smallest of its fields'; one PRIVATE field makes the
  whole response PRIVATE (not for shared caches).

An operation that selects nothing restricting (only `__typename`) has no maxAge: it is
not cached. Only the static document is read, so a fragment on a concrete type inside
an abstract field counts whether or not the type comes back (the stricter answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
)
from graphql.type.definition import GraphQLInterfaceType
from strawberry.schema_directive import Location

from app.engine.compat import field_definition, object_definition

MAX_WALKED_FIELDS = 10_000  # a bound on the walk; documents this large are refused earlier


@strawberry.enum(description="Who may keep a cached response.")
class CacheControlScope(Enum):
    """Apollo's cache scopes."""

    PUBLIC = strawberry.enum_value("PUBLIC", description="Any cache, shared ones included.")
    PRIVATE = strawberry.enum_value(
        "PRIVATE", description="Only the caller's own cache: the data depends on the viewer."
    )


@strawberry.schema_directive(
    locations=[Location.OBJECT, Location.FIELD_DEFINITION, Location.INTERFACE],
    name="cacheControl",
    description="How long a response selecting this may be cached, and by whom.",
)
class CacheControl:
    """A cache hint (the directive's arguments)."""

    max_age: int | None = None
    scope: CacheControlScope | None = None
    inherit_max_age: bool = False


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """An operation's combined hints: None maxAge when nothing restricted it."""

    max_age: int | None
    private: bool

    @property
    def shareable_seconds(self) -> int:
        """How long a shared cache may keep the response (0: not at all)."""
        if self.private or self.max_age is None:
            return 0
        return self.max_age


def _hint(directives: object) -> CacheControl | None:
    for directive in directives or ():  # type: ignore[attr-defined]
        if isinstance(directive, CacheControl):
            return directive
    return None


def _type_hint(named: GraphQLNamedType) -> CacheControl | None:
    definition = object_definition(named)
    return _hint(definition.directives) if definition is not None else None


def _field_hint(field: GraphQLField) -> CacheControl | None:
    definition = field_definition(field)
    return _hint(definition.directives) if definition is not None else None


class _Walk:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.max_age: int | None = None
        self.private = False
        self.walked = 0

    def restrict(self, max_age: int | None, scope: CacheControlScope | None) -> None:
        if max_age is not None:
            self.max_age = max_age if self.max_age is None else min(self.max_age, max_age)
        if scope is CacheControlScope.PRIVATE:
            self.private = True

    def selection(self, parent: GraphQLNamedType, selections: SelectionSetNode, root: bool) -> None:
        for node in selections.selections:
            self.walked += 1
            if self.walked > MAX_WALKED_FIELDS:
                self.restrict(0, None)
                return
            if isinstance(node, FieldNode):
                self.field(parent, node, root)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                narrowed = self.schema.get_type(condition.name.value) if condition else parent
                self.selection(narrowed or parent, node.selection_set, root)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    narrowed = self.schema.get_type(fragment.type_condition.name.value)
                    self.selection(narrowed or parent, fragment.selection_set, root)

    def field(self, parent: GraphQLNamedType, node: FieldNode, root: bool) -> None:
        name = node.name.value
        if name.startswith("__"):  # __typename restricts nothing; introspection is not cached
            if name != "__typename":
                self.restrict(0, None)
            return
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        definition = parent.fields.get(name)
        if definition is None:
            return
        named = get_named_type(definition.type)
        composite = is_composite_type(named)
        field_hint = _field_hint(definition)
        type_hint = _type_hint(named) if composite else None
        scope = (field_hint.scope if field_hint else None) or (
            type_hint.scope if type_hint else None
        )
        hinted_age = next(
            (
                hint.max_age
                for hint in (field_hint, type_hint)
                if hint is not None and hint.max_age is not None
            ),
            None,
        )
        inherits = any(
            hint is not None and hint.inherit_max_age for hint in (field_hint, type_hint)
        )
        if hinted_age is not None:
            self.restrict(hinted_age, scope)
        elif (composite or root) and not inherits:
            self.restrict(0, scope)
        else:
            self.restrict(None, scope)
        if composite and node.selection_set is not None:
            self.selection(named, node.selection_set, root=False)


def operation_policy(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> CachePolicy:
    """The cache policy of one operation of a valid document (mutations: never cached)."""
    root = schema.get_root_type(operation.operation)
    if root is None or operation.operation.value != "query":
        return CachePolicy(0, True)
    walk = _Walk(schema, document)
    walk.selection(root, operation.selection_set, root=True)
    return CachePolicy(walk.max_age, walk.private)


__all__ = ["CacheControl", "CacheControlScope", "CachePolicy", "operation_policy"]
