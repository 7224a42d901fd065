"""Runs one document through the plan executor and graphql-core and checks the claims.

Each claim that fails raises its own AssertionError subclass, so hypothesis reports
each kind of difference on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, print_ast
from graphql.execution import get_variable_values

from app.engine import GraphQLExecutor, PreparedDocument
from tests.generated_shop import GeneratedStore, request_context
from tests.graphql_generator import reversed_fields

MODES = ("plans", "graphql-core")

# How many documents were checked, per (backend, what): reported at the end of the tests.
DOCUMENTS: Counter[tuple[str, str]] = Counter()


@dataclass(frozen=True)
class Answer:
    """What one execution gave: data as JSON, errors as (path, message), or what it raised."""

    data: str = "null"
    errors: tuple[tuple[str, str], ...] = ()
    raised: str | None = None
    from_plan: bool = False

    @property
    def error_set(self) -> frozenset[tuple[str, str]]:
        """The errors, in no order."""
        return frozenset(self.errors)


async def answer(
    executor: GraphQLExecutor,
    store: GeneratedStore,
    caller: str,
    query: str,
    variables: dict[str, Any],
) -> Answer:
    """Run a document once with a fresh request context; what raised is kept, not raised."""
    try:
        prepared = executor.prepare(query)
    except Exception as error:  # the server would answer 500
        return Answer(raised=f"prepare: {type(error).__name__}: {error}")
    assert not prepared.errors, prepared.errors  # generated documents are valid
    try:
        result = await executor.execute(
            prepared,
            context=request_context(store, caller),
            variables=variables,
            operation_name=None,
        )
    except (Exception, asyncio.CancelledError) as error:  # the server would answer 500
        return Answer(raised=f"{type(error).__name__}: {error}")
    errors = tuple((json.dumps(error.path), error.message) for error in result.errors or ())
    return Answer(
        data=json.dumps(result.data),
        errors=errors,
        from_plan=_ran_from_plan(executor, prepared, variables),
    )


def _ran_from_plan(
    executor: GraphQLExecutor, prepared: PreparedDocument, variables: dict[str, Any]
) -> bool:
    """Whether a compiled plan ran (not graphql-core, not a request error), as the executor decides.

    After the run the plan for these variables is in the document's cache, so asking
    for it compiles nothing.
    """
    plans = prepared.query_plans
    if plans is None:
        return False
    operation = prepared.operation(None)
    coerced = get_variable_values(
        executor.core_schema,
        operation.variable_definitions or (),
        variables,
        max_errors=50,
        hide_suggestions=executor.hide_suggestions,
    )
    if isinstance(coerced, list):  # variables refused: nothing ran
        return False
    plan = plans.plan(operation, coerced)
    # A GraphQLError: the root selection itself fails for these values (nothing ran).
    return plan is not None and not isinstance(plan, GraphQLError)


class EngineRaised(AssertionError):
    """An exception escaped `execute`."""


class DataDiffers(AssertionError):
    """Plans and graphql-core gave different data."""


class DataDependsOnOrder(AssertionError):
    """Plans gave other data (not only in key order) when the fields came in another order."""


class DuplicateErrors(AssertionError):
    """Plans reported one error more than once."""


class ErrorsDependOnOrder(AssertionError):
    """Plans reported other errors when the fields came in another order."""


class ErrorsMissingFromPlans(AssertionError):
    """graphql-core reported errors (the same in both orders) that plans did not."""


class ErrorOutsideNulls(AssertionError):
    """Plans reported an error where the data is not null (nor any position above it)."""


class ErrorsDifferFromCore(AssertionError):
    """Plans reported an error graphql-core would report too, and graphql-core did not.

    graphql-core drops errors below a position once a non-null error nulled it (later items
    of a list, later fields of an object); plans report every error of a field that ran. So
    an extra plan error is allowed only strictly below a nulled position.
    """


def _sorted_json(data: str) -> str:
    return json.dumps(json.loads(data), sort_keys=True)


def check_answers(answers: dict[tuple[str, str], Answer]) -> None:
    """The claims for one run of a document: keys are (mode, "forward" | "reversed")."""
    raised = [
        f"{mode} ({order} fields) raised {answer.raised}"
        for (mode, order), answer in answers.items()
        if answer.raised is not None
    ]
    if raised:
        raise EngineRaised("\n".join(raised))
    forward, backward = answers["plans", "forward"], answers["plans", "reversed"]
    if _sorted_json(forward.data) != _sorted_json(backward.data):
        raise DataDependsOnOrder(f"forward: {forward.data}\nreversed: {backward.data}")
    for order in ("forward", "reversed"):
        plans, core = answers["plans", order], answers["graphql-core", order]
        if plans.data != core.data:  # the same values in the same key order
            raise DataDiffers(f"{order} fields:\n plans: {plans.data}\n core:  {core.data}")
    for order in ("forward", "reversed"):
        plans = answers["plans", order]
        repeated = [error for error, count in Counter(plans.errors).items() if count > 1]
        if repeated:
            raise DuplicateErrors(f"{order} fields: reported more than once: {repeated}")
    # On graphql-core (introspection, or past the plan-variant cap) the fields after a
    # failed non-null sibling do not run: which errors it reports depends on the order.
    if forward.from_plan and backward.from_plan and forward.error_set != backward.error_set:
        raise ErrorsDependOnOrder(
            f"only forward: {sorted(forward.error_set - backward.error_set)}\n"
            f"only reversed: {sorted(backward.error_set - forward.error_set)}"
        )
    for order, plans in (("forward", forward), ("reversed", backward)):
        data = json.loads(plans.data)
        outside = [error for error in plans.errors if not _nulled(data, json.loads(error[0]))]
        if outside:
            raise ErrorOutsideNulls(f"{order} fields: {outside}")
    core_forward, core_backward = (
        answers["graphql-core", "forward"],
        answers["graphql-core", "reversed"],
    )
    if core_forward.error_set != core_backward.error_set:
        return  # graphql-core's own answer depends on the order: nothing to compare with
    if core_forward.error_set - forward.error_set:
        raise ErrorsMissingFromPlans(
            f"only core: {sorted(core_forward.error_set - forward.error_set)}"
        )
    data = json.loads(forward.data)
    extra = [
        error
        for error in sorted(forward.error_set - core_forward.error_set)
        if not _below_a_null(data, json.loads(error[0]))
    ]
    if extra:
        raise ErrorsDifferFromCore(f"only plans, not below a nulled position: {extra}")


def _below_a_null(data: Any, path: list[str | int] | None) -> bool:
    """Whether a position strictly above `path` is null (where graphql-core drops errors)."""
    return path is not None and _nulled(data, path[:-1])


def _nulled(data: Any, path: list[str | int] | None) -> bool:
    """Whether the position `path` (None: the whole data) or one above it is null."""
    if data is None:
        return True
    for key in path or ():
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return False  # no such position: the error points nowhere
        if data is None:
            return True
    return path is None


async def check_document(
    executors: dict[str, GraphQLExecutor],
    store: GeneratedStore,
    caller: str,
    document: DocumentNode,
    runs: tuple[dict[str, Any], ...],
) -> None:
    """Run a document (both field orders, both modes) once per set of variables; check each run."""
    texts = {"forward": print_ast(document), "reversed": print_ast(reversed_fields(document))}
    backend = store.backend.name
    DOCUMENTS[backend, "documents"] += 1
    for number, variables in enumerate(runs, 1):
        answers = {
            (mode, order): await answer(executors[mode], store, caller, text, variables)
            for mode in MODES
            for order, text in texts.items()
        }
        DOCUMENTS[backend, "executions"] += len(answers)
        DOCUMENTS[backend, "runs from plans"] += answers["plans", "forward"].from_plan
        try:
            check_answers(answers)
        except AssertionError as error:
            error.args = (
                f"{error.args[0]}\n--- run {number} of {len(runs)}, caller {caller}, "
                f"backend {backend}, variables {json.dumps(variables)}"
                f"{f', after {json.dumps(runs[0])}' if number > 1 else ''}\n"
                f"{texts['forward']}",
            )
            raise
