"""Query operations executed from plans compiled once per document: the read hot path.

graphql-core's executor does general work for every field of every request: resolve
info, a resolver call, a path, value completion, and for each asynchronous field a
coroutine and a task. A storefront listing of 20 products is ~800 fields and ~90 tasks.
Here a query operation is compiled once into a tree of field plans that says which
fields only read an attribute, which call a resolver, and which resolve for all their
parents at once (`BatchResolver`), and it is executed breadth-first: the relation fields
of every level wait together on one loader call each, so a listing takes a handful of
awaits instead of a task per field.

Results match graphql-core's: the same data, the same errors (message, locations, path)
and the same null propagation, with errors under an already nulled position dropped as
graphql-core drops them. Tests run documents through both and compare. What the plans
do not cover (mutations, subscriptions, fragment variables, introspection roots) runs
on graphql-core.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect as python_inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
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
    Undefined,
    VariableNode,
    default_type_resolver,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
    located_error,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.executor import CollectedErrors
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor
from graphql.pyutils import Path, inspect
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

BATCH_RESOLVER = "shopgraph.batch_resolver"  # key of a BatchResolver in a field's metadata

# Kinds of field plans.
_LEAF = 0  # read an attribute, coerce it (scalars and enums)
_ATTRIBUTE = 1  # read an attribute, complete it (objects and lists)
_METHOD = 2  # a plain synchronous method of the parent: `def cursor(self) -> str`
_RESOLVER = 3  # anything else: the field's resolver with full resolve info
_BATCH = 4  # one loader call for every parent of the level
_TYPENAME = 5

# Kinds of completions.
_C_LEAF = 0
_C_OBJECT = 1
_C_LIST = 2
_C_ABSTRACT = 3


@dataclass(frozen=True, slots=True)
class BatchResolver:
    """How to resolve a relation for many parents with one loader call.

    `loader(context)` is the request's DataLoader, `key(parent)` its key (None: no
    load, the value is `build(None)`), and `build(loaded)` turns what the loader gives
    for one key into the field's value.
    """

    loader: Callable[[Any], Any]
    key: Callable[[Any], Hashable | None]
    build: Callable[[Any], Any]

    async def resolve_one(self, parent: Any, context: Any) -> Any:
        """The same value for one parent (what the field's ordinary resolver does)."""
        key = self.key(parent)
        if key is None:
            return self.build(None)
        return self.build(await self.loader(context).load(key))


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
    """The fields selected on one object type, in response order."""

    type: GraphQLObjectType
    fields: list[FieldPlan]
    is_type_of: Callable[[Any, Any], Any] | None
    # Strawberry's own `is_type_of` holds for instances of the type's class: no call needed.
    own_class: builtins.type | None = None


class OperationPlan:
    """A query operation compiled against the variable values its directives depend on."""

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
        self.fragment_definitions: dict[str, FragmentDefinitionNode] = {}
        self.fragments: dict[str, FragmentDetails] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                if definition.variable_definitions:
                    raise NotPlannable("fragment variables")
                self.fragment_definitions[definition.name.value] = definition
                self.fragments[definition.name.value] = FragmentDetails(definition)
        # Only @skip/@include read variables while fields are collected; the plan is
        # cached per value of those variables, so keeping these values here is correct.
        self._variables = variables
        root_type = schema.get_root_type(OperationType.QUERY)
        if operation.operation is not OperationType.QUERY or root_type is None:
            raise NotPlannable("not a query")
        grouped, defer_usages, _ = collect_fields(
            schema, self.fragments, variables, root_type, operation, hide_suggestions
        )
        if defer_usages:
            raise NotPlannable("@defer")
        if any(name.startswith("__") and name != "__typename" for name in _field_names(grouped)):
            raise NotPlannable("introspection")
        self.root = self._object_plan(root_type, grouped)

    def _object_plan(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> ObjectPlan:
        fields = [self._field_plan(object_type, key, details) for key, details in grouped.items()]
        definition = (object_type.extensions or {}).get("strawberry-definition")
        own_class = None
        if isinstance(definition, StrawberryObjectDefinition) and definition.is_type_of is None:
            own_class = definition.origin
        return ObjectPlan(object_type, fields, object_type.is_type_of, own_class)

    def _subplan(self, object_type: GraphQLObjectType, details: list[FieldDetails]) -> ObjectPlan:
        grouped, defer_usages, _ = collect_subfields(
            self.schema,
            self.fragments,
            self._variables,
            self.operation,
            object_type,
            details,
            self.hide_suggestions,
        )
        if defer_usages:
            raise NotPlannable("@defer")
        return self._object_plan(object_type, grouped)

    def _field_plan(
        self, parent_type: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> FieldPlan:
        if any(detail.fragment_variable_values is not None for detail in details):
            raise NotPlannable("fragment variables")
        nodes = [detail.node for detail in details]
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, _TYPENAME, parent_type, None, nodes, None, False)
        field_def = parent_type.fields[name]
        completion = self._completion(field_def.type, details)
        nullable = completion.nullable
        has_arguments = bool(field_def.args or nodes[0].arguments)
        plan = FieldPlan(
            key,
            _RESOLVER,
            parent_type,
            field_def,
            nodes,
            completion,
            nullable,
            has_arguments=has_arguments,
        )
        definition = (field_def.extensions or {}).get("strawberry-definition")
        if not isinstance(definition, StrawberryField) or definition.extensions:
            return plan  # permission classes and field extensions run in the resolver
        if definition.is_basic_field:
            plan.attribute = definition.python_name
            if completion.kind == _C_LEAF:
                plan.kind = _LEAF
                plan.coerce = completion.coerce
            else:
                plan.kind = _ATTRIBUTE
            return plan
        batch = definition.metadata.get(BATCH_RESOLVER) if definition.metadata else None
        if isinstance(batch, BatchResolver) and not has_arguments:
            plan.kind = _BATCH
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
            plan.kind = _METHOD
            plan.method = method
        return plan

    def _completion(
        self, output_type: GraphQLOutputType, details: list[FieldDetails]
    ) -> Completion:
        nullable = True
        if isinstance(output_type, GraphQLNonNull):
            nullable = False
            output_type = output_type.of_type
        if isinstance(output_type, GraphQLList):
            item = self._completion(output_type.of_type, details)
            return Completion(_C_LIST, nullable, output_type, item=item)
        if is_leaf_type(output_type):
            assert isinstance(output_type, GraphQLLeafType)
            return Completion(
                _C_LEAF, nullable, output_type, coerce=output_type.coerce_output_value
            )
        if is_object_type(output_type):
            assert isinstance(output_type, GraphQLObjectType)
            plan = self._subplan(output_type, details)
            return Completion(_C_OBJECT, nullable, output_type, plan=plan)
        assert is_abstract_type(output_type)
        assert isinstance(output_type, GraphQLAbstractType)
        # Every possible type is compiled now: a run only reads the plan it shares.
        plans_by_type = {
            object_type.name: self._subplan(object_type, details)
            for object_type in self.schema.get_possible_types(output_type)
        }
        return Completion(_C_ABSTRACT, nullable, output_type, plans_by_type=plans_by_type)


def _field_names(grouped: dict[str, list[FieldDetails]]) -> Iterable[str]:
    return (details[0].node.name.value for details in grouped.values())


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
        self._plans: dict[tuple[Any, ...], OperationPlan | None] = {}

    def plan(
        self, operation: OperationDefinitionNode, variables: VariableValues
    ) -> OperationPlan | None:
        """The plan for these variable values; None when graphql-core must run it."""
        key = (id(operation), *(_hashable(variables.coerced.get(name)) for name in self.variables))
        try:
            return self._plans[key]
        except KeyError:
            if len(self._plans) >= self.MAX_VARIANTS:
                return None
        try:
            plan: OperationPlan | None = OperationPlan(
                self.schema, self.document, operation, variables, self.hide_suggestions
            )
        except NotPlannable:
            plan = None
        self._plans[key] = plan
        return plan


def _hashable(value: Any) -> Hashable:
    return value if isinstance(value, Hashable) else repr(value)


def coerce_variables(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    inputs: dict[str, Any] | None,
    hide_suggestions: bool,
) -> VariableValues | list[GraphQLError]:
    """The operation's variables coerced as graphql-core does, or the request errors."""
    return get_variable_values(
        schema,
        operation.variable_definitions or (),
        inputs or {},
        max_errors=50,
        hide_suggestions=hide_suggestions,
    )


@dataclass(slots=True)
class _Anchor:
    """The nearest nullable position above a pending value: where its null would land."""

    container: dict[str, Any] | list[Any]
    key: Any
    path: Path | None


@dataclass(slots=True)
class _Job:
    """A resolver's pending result (awaitable) and where it goes."""

    awaitable: Awaitable[Any]
    field: FieldPlan
    container: dict[str, Any]
    path: Path
    anchor: _Anchor


@dataclass(slots=True)
class _BatchEntry:
    parent: Any
    container: dict[str, Any]
    path: Path
    anchor: _Anchor


class PlanRun:
    """One execution of an operation plan."""

    __slots__ = (
        "_args",
        "_batches",
        "_jobs",
        "context",
        "errors",
        "plan",
        "root",
        "variables",
    )

    def __init__(self, plan: OperationPlan, context: Any, variables: VariableValues) -> None:
        self.plan = plan
        self.context = context
        self.variables = variables
        self.errors = CollectedErrors()
        self.root: dict[str, Any] = {"data": None}
        self._jobs: list[_Job] = []
        self._batches: dict[FieldPlan, list[_BatchEntry]] = {}
        self._args: dict[FieldPlan, dict[str, Any]] = {}

    async def run(self) -> ExecutionResult:
        """Execute the whole operation."""
        root_anchor = _Anchor(self.root, "data", None)
        try:
            self.root["data"] = self._object(self.plan.root, None, None, root_anchor)
        except GraphQLError as error:
            self.errors.add(error, None)
        while self._jobs or self._batches:
            jobs, batches = self._jobs, self._batches
            self._jobs, self._batches = [], {}
            starts = [self._start_batch(plan, entries) for plan, entries in batches.items()]
            outcomes = await asyncio.gather(
                *(job.awaitable for job in jobs),
                *(load for _, load in starts if load is not None),
                return_exceptions=True,
            )
            for job, outcome in zip(jobs, outcomes, strict=False):
                self._finish(job.field, outcome, job.container, job.path, job.anchor)
            loaded = iter(outcomes[len(jobs) :])
            for (plan, entries), (keys, load) in zip(batches.items(), starts, strict=True):
                self._finish_batch(plan, entries, keys, None if load is None else next(loaded))
        return ExecutionResult(self.root["data"], self.errors.errors or None)

    # --- objects and fields -------------------------------------------------------

    def _object(
        self, plan: ObjectPlan, source: Any, path: Path | None, anchor: _Anchor
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        type_name = plan.type.name
        for field_plan in plan.fields:
            kind = field_plan.kind
            key = field_plan.key
            if kind == _LEAF:
                value = getattr(source, field_plan.attribute, None)
                if value is not None:
                    try:
                        coerced = field_plan.coerce(value)  # type: ignore[misc]
                    except Exception:
                        coerced = None
                    if coerced is not None and coerced is not Undefined:
                        result[key] = coerced
                        continue
                elif field_plan.nullable:
                    result[key] = None
                    continue
                # Null where not allowed, or a coercion error: the general path says which.
                result[key] = self._complete_field(
                    field_plan, value, Path(path, key, type_name), result, anchor
                )
            elif kind == _BATCH:
                result[key] = None
                entry = _BatchEntry(source, result, Path(path, key, type_name), anchor)
                batch = self._batches.get(field_plan)
                if batch is None:
                    self._batches[field_plan] = [entry]
                else:
                    batch.append(entry)
            elif kind == _TYPENAME:
                result[key] = type_name
            else:
                field_path = Path(path, key, type_name)
                try:
                    if kind == _ATTRIBUTE:
                        value = getattr(source, field_plan.attribute, None)
                    elif kind == _METHOD:
                        value = field_plan.method(source)  # type: ignore[misc]
                    else:
                        value = self._call_resolver(field_plan, source, field_path)
                        if asyncio.isfuture(value) or python_inspect.isawaitable(value):
                            result[key] = None
                            self._jobs.append(_Job(value, field_plan, result, field_path, anchor))
                            continue
                except Exception as raw_error:
                    self._field_error(raw_error, field_plan, field_path)
                    result[key] = None
                    continue
                result[key] = self._complete_field(field_plan, value, field_path, result, anchor)
        return result

    def _complete_field(
        self,
        field_plan: FieldPlan,
        value: Any,
        path: Path,
        container: dict[str, Any],
        anchor: _Anchor,
    ) -> Any:
        """Complete a resolved value; a nullable field takes its own errors (None)."""
        completion = field_plan.completion
        assert completion is not None
        if completion.nullable:
            anchor = _Anchor(container, field_plan.key, path)
        try:
            return self._complete(completion, field_plan, value, path, anchor)
        except Exception as raw_error:
            self._field_error(raw_error, field_plan, path)
            return None

    def _field_error(self, raw_error: Exception, field_plan: FieldPlan, path: Path) -> None:
        """As graphql-core: locate the error; raise it on if non-null, else record it."""
        error = located_error(raw_error, field_plan.nodes, path.as_list())
        if not field_plan.nullable:
            raise error
        self.errors.add(error, path)

    def _complete(
        self,
        completion: Completion,
        field_plan: FieldPlan,
        value: Any,
        path: Path,
        anchor: _Anchor,
    ) -> Any:
        if isinstance(value, BaseException):  # a failed resolver or load (or a cancellation)
            raise value
        if value is None or value is Undefined:
            if completion.nullable:
                return None
            parent = field_plan.parent_type.name
            raise TypeError(
                f"Cannot return null for non-nullable field {parent}.{field_plan.name}."
            )
        kind = completion.kind
        if kind == _C_OBJECT:
            assert completion.plan is not None
            return self._complete_object(completion.plan, field_plan, value, path, anchor)
        if kind == _C_LEAF:
            coerced = completion.coerce(value)  # type: ignore[misc]
            if coerced is Undefined or coerced is None:
                raise TypeError(
                    f"Expected `{inspect(completion.type)}.coerce_output_value("
                    f"{inspect(value)})` to return non-nullable value, returned:"
                    f" {inspect(coerced)}"
                )
            return coerced
        if kind == _C_LIST:
            return self._complete_list(completion, field_plan, value, path, anchor)
        return self._complete_abstract(completion, field_plan, value, path, anchor)

    def _complete_list(
        self,
        completion: Completion,
        field_plan: FieldPlan,
        value: Any,
        path: Path,
        anchor: _Anchor,
    ) -> list[Any]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{field_plan.parent_type.name}.{field_plan.name}'."
            )
        item = completion.item
        assert item is not None
        items: list[Any] = []
        for index, element in enumerate(value):
            item_path = Path(path, index, None)
            if not item.nullable:
                items.append(self._complete(item, field_plan, element, item_path, anchor))
                continue
            items.append(None)
            try:
                items[index] = self._complete(
                    item, field_plan, element, item_path, _Anchor(items, index, item_path)
                )
            except Exception as raw_error:
                error = located_error(raw_error, field_plan.nodes, item_path.as_list())
                self.errors.add(error, item_path)
        return items

    def _complete_abstract(
        self,
        completion: Completion,
        field_plan: FieldPlan,
        value: Any,
        path: Path,
        anchor: _Anchor,
    ) -> dict[str, Any]:
        abstract_type = completion.type
        assert isinstance(abstract_type, GraphQLAbstractType)
        info = self._info(field_plan, path)
        resolve_type = abstract_type.resolve_type or default_type_resolver
        type_name = resolve_type(value, info, abstract_type)
        if python_inspect.isawaitable(type_name):  # no such type in this schema
            if python_inspect.iscoroutine(type_name):
                type_name.close()
            raise GraphQLError(
                f"Abstract type '{abstract_type}' resolves its runtime type asynchronously,"
                " which query plans do not support.",
                field_plan.nodes,
            )
        runtime_type = self._runtime_type(type_name, abstract_type, field_plan, value)
        plan = completion.plans_by_type[runtime_type.name]
        return self._complete_object(plan, field_plan, value, path, anchor)

    def _runtime_type(
        self,
        type_name: Any,
        abstract_type: GraphQLAbstractType,
        field_plan: FieldPlan,
        value: Any,
    ) -> GraphQLObjectType:
        field_name = f"{field_plan.parent_type.name}.{field_plan.name}"
        if type_name is None:
            raise GraphQLError(
                f"Abstract type '{abstract_type}' must resolve to an Object type at runtime"
                f" for field '{field_name}'. Either the '{abstract_type}' type should provide"
                " a 'resolve_type' function or each possible type should provide"
                " an 'is_type_of' function.",
                field_plan.nodes,
            )
        if not isinstance(type_name, str):
            raise GraphQLError(
                f"Abstract type '{abstract_type}' must resolve to an Object type at runtime"
                f" for field '{field_name}' with value {inspect(value)},"
                f" received '{inspect(type_name)}', which is not a valid Object type name.",
                field_plan.nodes,
            )
        runtime_type = self.plan.schema.get_type(type_name)
        if runtime_type is None:
            raise GraphQLError(
                f"Abstract type '{abstract_type}' was resolved to a type"
                f" '{type_name}' that does not exist inside the schema.",
                field_plan.nodes,
            )
        if not isinstance(runtime_type, GraphQLObjectType):
            raise GraphQLError(
                f"Abstract type '{abstract_type}' was resolved to a non-object type '{type_name}'.",
                field_plan.nodes,
            )
        if not self.plan.schema.is_sub_type(abstract_type, runtime_type):
            raise GraphQLError(
                f"Runtime Object type '{runtime_type}' is not a possible"
                f" type for '{abstract_type}'.",
                field_plan.nodes,
            )
        return runtime_type

    def _complete_object(
        self, plan: ObjectPlan, field_plan: FieldPlan, value: Any, path: Path, anchor: _Anchor
    ) -> dict[str, Any]:
        """As graphql-core: the type's `is_type_of` must accept the value, then its fields."""
        if (
            plan.is_type_of is not None
            and type(value) is not plan.own_class
            and not plan.is_type_of(value, self._info(field_plan, path))
        ):
            raise GraphQLError(
                f"Expected value of type '{plan.type}' but got: {inspect(value)}.",
                field_plan.nodes,
            )
        return self._object(plan, value, path, anchor)

    # --- resolvers ----------------------------------------------------------------

    def _info(self, field_plan: FieldPlan, path: Path) -> Any:
        field_def = field_plan.field_def
        assert field_def is not None
        plan = self.plan
        return ResolveInfo(
            field_plan.name,
            field_plan.nodes,
            field_def.type,
            field_plan.parent_type,
            path,
            plan.schema,
            plan.fragment_definitions,
            None,
            plan.operation,
            self.variables.coerced,
            self.context,
            python_inspect.isawaitable,
            None,
            None,
            {},
        )

    def _call_resolver(self, field_plan: FieldPlan, source: Any, path: Path) -> Any:
        field_def = field_plan.field_def
        assert field_def is not None and field_def.resolve is not None
        arguments: dict[str, Any] = {}
        if field_plan.has_arguments:
            cached = self._args.get(field_plan)
            if cached is None:
                cached = get_argument_values(
                    field_def,
                    field_plan.nodes[0],
                    self.variables,
                    None,
                    self.plan.hide_suggestions,
                )
                self._args[field_plan] = cached
            arguments = cached
        return field_def.resolve(source, self._info(field_plan, path), **arguments)

    def _finish(
        self,
        field_plan: FieldPlan,
        outcome: Any,
        container: dict[str, Any],
        path: Path,
        anchor: _Anchor,
    ) -> None:
        """Complete a value that arrived later; a non-null failure nulls the anchor."""
        try:
            container[field_plan.key] = self._complete_field(
                field_plan, outcome, path, container, anchor
            )
        except GraphQLError as error:
            anchor.container[anchor.key] = None
            self.errors.add(error, anchor.path)

    def _start_batch(
        self, field_plan: FieldPlan, entries: list[_BatchEntry]
    ) -> tuple[list[Any], Awaitable[list[Any]] | None]:
        """Each parent's key (or the error making it), and one loader call for them all.

        No call when no parent has a key to load.
        """
        batch = field_plan.batch
        assert batch is not None
        keys: list[Any] = []
        for entry in entries:
            try:
                keys.append(batch.key(entry.parent))
            except Exception as raw_error:
                keys.append(raw_error)
        wanted = [key for key in keys if key is not None and not isinstance(key, Exception)]
        if not wanted:
            return keys, None
        try:
            load: Awaitable[list[Any]] = batch.loader(self.context).load_many(wanted)
        except Exception as raw_error:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(raw_error)
            load = failed
        return keys, load

    def _finish_batch(
        self, field_plan: FieldPlan, entries: list[_BatchEntry], keys: list[Any], loaded: Any
    ) -> None:
        """Build and complete each parent's value from what its key loaded."""
        batch = field_plan.batch
        assert batch is not None
        failed = isinstance(loaded, BaseException)
        values = iter(()) if loaded is None or failed else iter(loaded)
        for entry, key in zip(entries, keys, strict=True):
            outcome: Any
            if isinstance(key, Exception):
                outcome = key
            elif key is not None and failed:
                outcome = loaded
            else:
                try:
                    outcome = batch.build(None if key is None else next(values))
                except Exception as raw_error:
                    outcome = raw_error
            self._finish(field_plan, outcome, entry.container, entry.path, entry.anchor)


async def execute_plan(
    plan: OperationPlan, context: Any, variables: VariableValues
) -> ExecutionResult:
    """Run a compiled query operation."""
    return await PlanRun(plan, context, variables).run()
