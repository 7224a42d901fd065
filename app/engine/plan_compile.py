"""Query operations compiled once per document into field plans: the read hot path.

graphql-core's executor does general work for every field of every request: resolve
info, a resolver call, a path, value completion, and for each asynchronous field a
coroutine and a task. A storefront listing of 20 products is ~800 fields and ~90 tasks.
Here a query operation is compiled once into a tree of field plans that says which
fields only read an attribute, which call a resolver, and which resolve for all their
parents at once (a relation's `BatchResolver`); `plan_run` executes the tree
breadth-first, so a listing takes a handful of awaits instead of a task per field.

Plans depend on the values of the variables that @skip/@include read, so `PlanCache`
keeps one plan per operation and per combination of those values. What plans do not
cover (mutations, subscriptions, fragment variables, introspection roots) runs on
graphql-core.
"""

from __future__ import annotations

import builtins
import inspect as python_inspect
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
    visit,
)
from graphql.execution import VariableValues
from graphql.language import Visitor

from app.engine.compat import field_definition, object_definition
from app.engine.relations import BATCH_RESOLVER, BatchResolver
from app.engine.selections import NOT_APPLICABLE, collect, fragments_of, included

# Kinds of field plans.
LEAF = 0  # read an attribute, coerce it (scalars and enums)
ATTRIBUTE = 1  # read an attribute, complete it (objects and lists)
METHOD = 2  # a plain synchronous method of the parent: `def cursor(self) -> str`
RESOLVER = 3  # anything else: the field's resolver with full resolve info
BATCH = 4  # one loader call for every parent of the level
TYPENAME = 5

# Kinds of completions.
C_LEAF = 0
C_OBJECT = 1
C_LIST = 2
C_ABSTRACT = 3


class NotPlannable(Exception):
    """The operation uses something plans do not cover: graphql-core runs it."""


@dataclass(eq=False, slots=True)
class Completion:
    """How a field's value of one output type becomes response data."""

    kind: int
    nullable: bool
    type: GraphQLOutputType
    coerce: Callable[[Any], Any] | None = None  # leaves
    item: Completion | None = None  # lists
    plan: ObjectPlan | None = None  # objects
    plans_by_type: dict[str, ObjectPlan] = field(default_factory=dict)  # abstract types


@dataclass(eq=False, slots=True)
class FieldPlan:
    """One response key of a selection set on one object type."""

    key: str
    kind: int
    parent_type: GraphQLObjectType
    field_def: GraphQLField | None
    nodes: list[FieldNode]
    completion: Completion | None
    nullable: bool
    attribute: str = ""
    coerce: Callable[[Any], Any] | None = None
    method: Callable[[Any], Any] | None = None
    batch: BatchResolver | None = None
    has_arguments: bool = False

    @property
    def name(self) -> str:
        """The schema field name."""
        return self.nodes[0].name.value


@dataclass(eq=False, slots=True)
class ObjectPlan:
    """The fields selected on one object type, in response order.

    A selection that cannot be collected for these variables (an invalid @skip/@include
    argument) has no fields and the `error` that completing a value raises, as
    graphql-core raises it when it collects that selection.
    """

    type: GraphQLObjectType
    fields: list[FieldPlan]
    is_type_of: Callable[[Any, Any], Any] | None
    # Strawberry's own `is_type_of` holds for instances of the type's class: no call needed.
    own_class: builtins.type | None = None
    error: GraphQLError | None = None


class OperationPlan:
    """A query operation compiled against the variable values its directives depend on.

    Raises GraphQLError when the root selection cannot be collected for these values
    (graphql-core answers such a request with that error and no data).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.hide_suggestions = hide_suggestions
        self.fragment_definitions: dict[str, FragmentDefinitionNode] = fragments_of(document)
        if any(fragment.variable_definitions for fragment in self.fragment_definitions.values()):
            raise NotPlannable("fragment variables")
        # Only @skip/@include read variables while fields are collected; the plan is
        # cached per value of those variables, so keeping these values here is correct.
        self._variables = variables
        root_type = schema.get_root_type(OperationType.QUERY)
        if operation.operation is not OperationType.QUERY or root_type is None:
            raise NotPlannable("not a query")
        grouped = self._collect(root_type, [operation])
        if any(name.startswith("__") and name != "__typename" for name in _names(grouped)):
            raise NotPlannable("introspection")
        self.root = self._object_plan(root_type, grouped)

    def _collect(
        self, object_type: GraphQLObjectType, nodes: list[Any]
    ) -> dict[str, list[FieldNode]]:
        variables = self._variables

        def narrow(group: Any, condition: str | None) -> Any:
            if condition is None or condition == object_type.name:
                return group
            conditional = self.schema.get_type(condition)
            if isinstance(conditional, GraphQLAbstractType) and self.schema.is_sub_type(
                conditional, object_type
            ):
                return group
            return NOT_APPLICABLE

        invalid: list[GraphQLError] = []

        def include(node: Any) -> bool:
            try:
                return included(node, variables)
            except GraphQLError as error:
                invalid.append(error)
                return False

        grouped = collect(
            [node.selection_set for node in nodes if node.selection_set],
            self.fragment_definitions,
            include=include,
            narrow=narrow,
        )
        if invalid:
            # graphql-core reports the first invalid directive it meets, which depends on the
            # order of the fields; one chosen by its message does not.
            raise min(invalid, key=lambda error: error.message)
        return grouped.get(None, {})

    def _object_plan(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldNode]]
    ) -> ObjectPlan:
        fields = [self._field_plan(object_type, key, nodes) for key, nodes in grouped.items()]
        definition = object_definition(object_type)
        own_class = None
        if definition is not None and definition.is_type_of is None:
            own_class = definition.origin
        return ObjectPlan(object_type, fields, object_type.is_type_of, own_class)

    def _subplan(self, object_type: GraphQLObjectType, nodes: list[FieldNode]) -> ObjectPlan:
        try:
            grouped = self._collect(object_type, nodes)
        except GraphQLError as error:
            failed = self._object_plan(object_type, {})
            failed.error = error
            return failed
        return self._object_plan(object_type, grouped)

    def _field_plan(
        self, parent_type: GraphQLObjectType, key: str, nodes: list[FieldNode]
    ) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, TYPENAME, parent_type, None, nodes, None, False)
        field_def = parent_type.fields[name]
        completion = self._completion(field_def.type, nodes)
        has_arguments = bool(field_def.args or nodes[0].arguments)
        plan = FieldPlan(
            key,
            RESOLVER,
            parent_type,
            field_def,
            nodes,
            completion,
            completion.nullable,
            has_arguments=has_arguments,
        )
        definition = field_definition(field_def)
        if definition is None or definition.extensions:
            return plan  # permission classes and field extensions run in the resolver
        if definition.is_basic_field:
            plan.attribute = definition.python_name
            if completion.kind == C_LEAF:
                plan.kind = LEAF
                plan.coerce = completion.coerce
            else:
                plan.kind = ATTRIBUTE
            return plan
        batch = definition.metadata.get(BATCH_RESOLVER) if definition.metadata else None
        if isinstance(batch, BatchResolver) and not has_arguments:
            plan.kind = BATCH
            plan.batch = batch
            return plan
        resolver = definition.base_resolver
        if (
            resolver is not None
            and not has_arguments
            and not resolver.is_async
            and callable(method := resolver.wrapped_func)
            and list(python_inspect.signature(method).parameters) == ["self"]
        ):
            plan.kind = METHOD
            plan.method = method
        return plan

    def _completion(self, output_type: GraphQLOutputType, nodes: list[FieldNode]) -> Completion:
        nullable = True
        if isinstance(output_type, GraphQLNonNull):
            nullable = False
            output_type = output_type.of_type
        if isinstance(output_type, GraphQLList):
            item = self._completion(output_type.of_type, nodes)
            return Completion(C_LIST, nullable, output_type, item=item)
        if is_leaf_type(output_type):
            assert isinstance(output_type, GraphQLLeafType)
            return Completion(C_LEAF, nullable, output_type, coerce=output_type.coerce_output_value)
        if is_object_type(output_type):
            assert isinstance(output_type, GraphQLObjectType)
            plan = self._subplan(output_type, nodes)
            return Completion(C_OBJECT, nullable, output_type, plan=plan)
        assert is_abstract_type(output_type)
        assert isinstance(output_type, GraphQLAbstractType)
        # Every possible type is compiled now: a run only reads the plan it shares.
        plans_by_type = {
            object_type.name: self._subplan(object_type, nodes)
            for object_type in self.schema.get_possible_types(output_type)
        }
        return Completion(C_ABSTRACT, nullable, output_type, plans_by_type=plans_by_type)


def _names(grouped: dict[str, list[FieldNode]]) -> list[str]:
    return [nodes[0].name.value for nodes in grouped.values()]


def directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """Names of the variables that @skip/@include read: a plan is valid per their values."""
    names: set[str] = set()

    class _Directives(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.add(argument.value.name.value)

    visit(document, _Directives())
    return tuple(sorted(names))


class PlanCache:
    """The compiled plans of one document, per operation and directive-variable values."""

    MAX_VARIANTS = 16  # beyond this, a document's @skip/@include mix runs on graphql-core

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, hide_suggestions: bool):
        self.schema = schema
        self.document = document
        self.hide_suggestions = hide_suggestions
        self.variables = directive_variables(document)
        self._plans: dict[tuple[Any, ...], OperationPlan | GraphQLError | None] = {}

    def plan(
        self, operation: OperationDefinitionNode, variables: VariableValues
    ) -> OperationPlan | GraphQLError | None:
        """The plan for these variable values; the request's error; None: graphql-core runs it."""
        coerced = variables.coerced
        # An absent variable and an explicit null fail @skip/@include with different errors.
        key = (id(operation), *(_hashable(coerced.get(name, _ABSENT)) for name in self.variables))
        try:
            return self._plans[key]
        except KeyError:
            if len(self._plans) >= self.MAX_VARIANTS:
                return None
        plan: OperationPlan | GraphQLError | None
        try:
            plan = OperationPlan(
                self.schema, self.document, operation, variables, self.hide_suggestions
            )
        except NotPlannable:
            plan = None
        except GraphQLError as error:
            plan = error
        self._plans[key] = plan
        return plan

    @property
    def compiled(self) -> int:
        """How many plans this document has compiled (for tests and diagnostics)."""
        return sum(isinstance(plan, OperationPlan) for plan in self._plans.values())


_ABSENT = object()


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, Hashable) else repr(value)
