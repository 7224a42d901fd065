"""What an operation requires, read off the schema fields it selects.

A field may declare a requirement in its Strawberry metadata (`metadata={key: value}`);
what the values mean is the app's business (partner scopes, say). Since declarations
are static, the requirements of an operation depend only on the document and on the
values of the variables that @skip/@include read: `RequiredMetadata` walks an operation
once per combination of those values (through `selections.collect`, the one walker)
and keeps the answer with the prepared document.

A field selected on an interface also requires what its implementations declare, so a
declaration on a concrete type cannot be bypassed through `... on Node`.
Introspection (`__typename`, `__schema`, `__type`) requires nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
)
from graphql.execution import VariableValues, get_variable_values

from app.engine.compat import field_definition
from app.engine.cost import MAX_EXPANDED_FIELDS, QueryTooComplex
from app.engine.plan_compile import directive_variables
from app.engine.selections import (
    collect,
    fragments_of,
    included,
    literally_included,
    unconditionally_included,
)

# value -> the schema coordinates ("Type.field") selected that declare it, sorted
Required = Mapping[Hashable, tuple[str, ...]]
_ABSENT = object()
_INVALID = object()


class RequiredMetadata:
    """The values one metadata key takes over the fields each operation of a document selects.

    Cached per operation and per value of the @skip/@include variables (at most
    MAX_VARIANTS combinations; beyond, computed each time).
    """

    MAX_VARIANTS = 16

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, key: str) -> None:
        self.schema = schema
        self.document = document
        self.key = key
        self.fragments = fragments_of(document)
        self.variables = directive_variables(document)
        self._found: dict[tuple[Any, ...], Required] = {}

    def of(self, operation: OperationDefinitionNode, inputs: Mapping[str, Any] | None) -> Required:
        """What `operation` requires with these (uncoerced) request variables."""
        names = self.variables
        cache_key = (id(operation), *(_key_of(inputs, name) for name in names))
        found = self._found.get(cache_key)
        if found is not None:
            return found
        found = self._walk_operation(operation, inputs)
        if len(self._found) < self.MAX_VARIANTS:
            self._found[cache_key] = found
        return found

    def always(self, operation: OperationDefinitionNode) -> Required:
        """What `operation` requires whatever its variables: what the fields it selects
        outside any `@skip`/`@include` that reads a variable declare (not cached)."""
        return self._walked(operation, unconditionally_included)

    def _walk_operation(
        self, operation: OperationDefinitionNode, inputs: Mapping[str, Any] | None
    ) -> Required:
        include: Any = literally_included  # exact when no directive reads a variable
        if self.variables:
            coerced = self._directive_values(operation, inputs)
            if coerced is not None:
                include = _Included(coerced)
        try:
            return self._walked(operation, include)
        except GraphQLError:
            # A directive argument invalid for these values: execution reports it. Until
            # then, count every conditional selection as included (asks for the most).
            return self._walked(operation, literally_included)

    def _walked(self, operation: OperationDefinitionNode, include: Any) -> Required:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return {}
        walk = _Walk(self.schema, self.fragments, self.key, include)
        walk.selection(root, [operation.selection_set])
        return {value: tuple(sorted(where)) for value, where in walk.found.items()}

    def _directive_values(
        self, operation: OperationDefinitionNode, inputs: Mapping[str, Any] | None
    ) -> VariableValues | None:
        """The coerced values of the directive variables; None when one is invalid."""
        definitions = [
            definition
            for definition in operation.variable_definitions or ()
            if definition.variable.name.value in self.variables
        ]
        coerced = get_variable_values(
            self.schema, definitions, dict(inputs or {}), max_errors=1, hide_suggestions=True
        )
        return None if isinstance(coerced, list) else coerced


def _key_of(inputs: Mapping[str, Any] | None, name: str) -> Hashable:
    # @skip/@include take Boolean!: any other value fails coercion the same way.
    if not inputs or name not in inputs:
        return _ABSENT
    value = inputs[name]
    return value if isinstance(value, bool) else _INVALID


class _Included:
    """@skip/@include decided with the request's coerced variables."""

    def __init__(self, variables: VariableValues) -> None:
        self.variables = variables

    def __call__(self, node: Any) -> bool:
        return included(node, self.variables)


class _Walk:
    """One walk of an operation: collects declared values with where they are declared."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, Any],
        key: str,
        include: Any,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.key = key
        self.include = include
        self.found: dict[Hashable, set[str]] = {}
        self.visited = 0

    def selection(self, parent: GraphQLNamedType, selection_sets: list[SelectionSetNode]) -> None:
        """Walk the merged selection sets of fields of type `parent`."""
        groups = collect(
            selection_sets,
            self.fragments,
            include=self.include,
            narrow=lambda group, condition: self._narrow(parent, group, condition),
            on_field=self._count,
        )
        for group, fields in groups.items():
            owner = parent if group is None else self.schema.type_map[group]
            if isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
                for nodes in fields.values():
                    self._field(owner, nodes)

    def _field(
        self, owner: GraphQLObjectType | GraphQLInterfaceType, nodes: list[FieldNode]
    ) -> None:
        name = nodes[0].name.value
        if name.startswith("__"):
            return
        definition = owner.fields.get(name)
        if definition is None:  # validation reports it; only valid documents get here
            return
        self._declared(owner, name)
        if isinstance(owner, GraphQLInterfaceType):
            for implementation in self.schema.get_possible_types(owner):
                self._declared(implementation, name)
        named = get_named_type(definition.type)
        if not is_leaf_type(named):
            self.selection(named, [node.selection_set for node in nodes if node.selection_set])

    def _declared(self, owner: GraphQLObjectType | GraphQLInterfaceType, name: str) -> None:
        field = owner.fields.get(name)
        strawberry_field = field_definition(field) if field is not None else None
        metadata: Mapping[str, Any] = (
            strawberry_field.metadata if strawberry_field else None
        ) or {}
        value = metadata.get(self.key)
        if value is not None:
            self.found.setdefault(value, set()).add(f"{owner.name}.{name}")

    def _narrow(self, parent: GraphQLNamedType, group: str | None, condition: str | None) -> Any:
        # Fields of a fragment on a concrete type inside an abstract one are that type's;
        # inside a concrete type, a fragment on one of its interfaces selects its own fields.
        current = group or parent.name
        if condition is None or condition == current:
            return group
        if isinstance(self.schema.type_map[current], GraphQLAbstractType):
            return condition
        return group

    def _count(self) -> None:
        self.visited += 1
        if self.visited > MAX_EXPANDED_FIELDS:
            raise QueryTooComplex(
                f"The operation selects more than {MAX_EXPANDED_FIELDS} fields "
                "once its fragments are inlined"
            )


__all__ = ["Required", "RequiredMetadata"]
