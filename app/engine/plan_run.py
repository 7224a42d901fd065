"""Runs a compiled query plan breadth-first: the relation fields of a level wait together.

Results match graphql-core's: the same data and null propagation, and errors with the
same message, locations and path. Where graphql-core's errors depend on the order of
fields (it stops collecting errors below a position once that position is nulled, and a
nulled object stops running its later fields), a plan run is order-independent: every
field of a selection runs even when a sibling nulls their parent, and every error
raised in a field that ran is reported once.
"""

from __future__ import annotations

import asyncio
import inspect as python_inspect
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLAbstractType,
    GraphQLError,
    Undefined,
    default_type_resolver,
    located_error,
)
from graphql.execution import VariableValues, get_argument_values
from graphql.pyutils import Path, inspect

from app.engine.compat import ResolveInfo
from app.engine.plan_compile import (
    ATTRIBUTE,
    BATCH,
    C_LEAF,
    C_LIST,
    C_OBJECT,
    LEAF,
    METHOD,
    TYPENAME,
    Completion,
    FieldPlan,
    ObjectPlan,
    OperationPlan,
)
from app.engine.plan_levels import runtime_type_of, start_batch


class _NullPropagation(Exception):
    """A non-null position failed, its error already recorded: null the nearest nullable one."""


@dataclass(slots=True)
class _Anchor:
    """The nearest nullable position above a pending value: where its null would land."""

    container: dict[str, Any] | list[Any]
    key: Any


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
        self.errors: list[GraphQLError] = []
        self.root: dict[str, Any] = {"data": None}
        self._jobs: list[_Job] = []
        self._batches: dict[FieldPlan, list[_BatchEntry]] = {}
        self._args: dict[FieldPlan, dict[str, Any]] = {}

    async def run(self) -> ExecutionResult:
        """Execute the whole operation."""
        root_anchor = _Anchor(self.root, "data")
        try:
            self.root["data"] = self._object(self.plan.root, None, None, root_anchor)
        except _NullPropagation:
            self.root["data"] = None
        while self._jobs or self._batches:
            jobs, batches = self._jobs, self._batches
            self._jobs, self._batches = [], {}
            starts = [
                start_batch(plan, [entry.parent for entry in entries], self.context)
                for plan, entries in batches.items()
            ]
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
        return ExecutionResult(self.root["data"], self.errors or None)

    # --- objects and fields -------------------------------------------------------

    def _object(
        self, plan: ObjectPlan, source: Any, path: Path | None, anchor: _Anchor
    ) -> dict[str, Any]:
        """The object's fields; every field runs even when a sibling nulls the object."""
        result: dict[str, Any] = {}
        nulled = False
        for field_plan in plan.fields:
            try:
                self._field(field_plan, plan.type.name, source, path, result, anchor)
            except _NullPropagation:
                result[field_plan.key] = None
                nulled = True
        if nulled:
            raise _NullPropagation
        return result

    def _field(
        self,
        field_plan: FieldPlan,
        type_name: str,
        source: Any,
        path: Path | None,
        result: dict[str, Any],
        anchor: _Anchor,
    ) -> None:
        kind = field_plan.kind
        key = field_plan.key
        if kind == LEAF:
            value = getattr(source, field_plan.attribute, None)
            if value is not None:
                try:
                    coerced = field_plan.coerce(value)  # type: ignore[misc]
                except Exception:
                    coerced = None
                if coerced is not None and coerced is not Undefined:
                    result[key] = coerced
                    return
            elif field_plan.nullable:
                result[key] = None
                return
            # Null where not allowed, or a coercion error: the general path says which.
            result[key] = self._complete_field(
                field_plan, value, Path(path, key, type_name), result, anchor
            )
        elif kind == BATCH:
            result[key] = None
            entry = _BatchEntry(source, result, Path(path, key, type_name), anchor)
            batch = self._batches.get(field_plan)
            if batch is None:
                self._batches[field_plan] = [entry]
            else:
                batch.append(entry)
        elif kind == TYPENAME:
            result[key] = type_name
        else:
            field_path = Path(path, key, type_name)
            try:
                if kind == ATTRIBUTE:
                    value = getattr(source, field_plan.attribute, None)
                elif kind == METHOD:
                    value = field_plan.method(source)  # type: ignore[misc]
                else:
                    value = self._call_resolver(field_plan, source, field_path)
                    if asyncio.isfuture(value) or python_inspect.isawaitable(value):
                        result[key] = None
                        self._jobs.append(_Job(value, field_plan, result, field_path, anchor))
                        return
            except Exception as raw_error:
                result[key] = None
                self._field_error(raw_error, field_plan, field_path)
                return
            result[key] = self._complete_field(field_plan, value, field_path, result, anchor)

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
            anchor = _Anchor(container, field_plan.key)
        try:
            return self._complete(completion, field_plan, value, path, anchor)
        except _NullPropagation:
            if completion.nullable:
                return None
            raise
        except Exception as raw_error:
            self._field_error(raw_error, field_plan, path)
            return None

    def _field_error(self, raw_error: Exception, field_plan: FieldPlan, path: Path) -> None:
        """Locate and record the error; a non-null field then nulls its nearest nullable parent."""
        self._record(raw_error, field_plan, path)
        if not field_plan.nullable:
            raise _NullPropagation

    def _record(self, raw_error: Exception, field_plan: FieldPlan, path: Path) -> None:
        self.errors.append(located_error(raw_error, field_plan.nodes, path.as_list()))

    def _complete(
        self,
        completion: Completion,
        field_plan: FieldPlan,
        value: Any,
        path: Path,
        anchor: _Anchor,
    ) -> Any:
        if isinstance(value, BaseException):  # a failed resolver or load
            if isinstance(value, Exception):
                raise value
            # A cancelled awaitable (loaders shield shared futures, so not a sibling's
            # cancellation): this field's error, never an exception out of the run.
            raise RuntimeError(f"The field's work ended with {type(value).__name__}") from value
        if value is None or value is Undefined:
            if completion.nullable:
                return None
            parent = field_plan.parent_type.name
            raise TypeError(
                f"Cannot return null for non-nullable field {parent}.{field_plan.name}."
            )
        kind = completion.kind
        if kind == C_OBJECT:
            assert completion.plan is not None
            return self._complete_object(completion.plan, field_plan, value, path, anchor)
        if kind == C_LEAF:
            coerced = completion.coerce(value)  # type: ignore[misc]
            if coerced is Undefined or coerced is None:
                raise TypeError(
                    f"Expected `{inspect(completion.type)}.coerce_output_value("
                    f"{inspect(value)})` to return non-nullable value, returned:"
                    f" {inspect(coerced)}"
                )
            return coerced
        if kind == C_LIST:
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
        nulled = False  # a non-null item failed: the list is null, once every item ran
        for index, element in enumerate(value):
            item_path = Path(path, index, None)
            items.append(None)
            item_anchor = _Anchor(items, index) if item.nullable else anchor
            try:
                items[index] = self._complete(item, field_plan, element, item_path, item_anchor)
            except _NullPropagation:
                nulled = nulled or not item.nullable
            except Exception as raw_error:
                self._record(raw_error, field_plan, item_path)
                nulled = nulled or not item.nullable
        if nulled:
            raise _NullPropagation
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
        runtime_type = runtime_type_of(
            self.plan.schema, type_name, abstract_type, field_plan, value
        )
        return self._complete_object(
            completion.plans_by_type[runtime_type.name], field_plan, value, path, anchor
        )

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
        if plan.error is not None:
            raise plan.error
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
        except _NullPropagation:
            anchor.container[anchor.key] = None

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
