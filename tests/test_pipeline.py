"""The admission pipeline: named steps in the served order, new steps plug in between them
without changes to the others, and any failure inside it is a masked 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.routing import Route

from app.http.graphql import GraphQLEndpoint
from app.http.pipeline import GraphQLParams, Next, Outcome, Pipeline, RequestState, Step
from app.main import create_app
from tests.conftest import Backend

PRODUCT_NAMES = "query Names { products(first: 3) { edges { node { name } } } }"
NAMES_COST = 2 + 3  # the connection, and one per node
# What a persisted-document step would look up by id (issue 10): a store of trusted documents.
TRUSTED = {"names-v1": PRODUCT_NAMES}
CAPACITY = 1000


def _connection() -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "headers": [],
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
        }
    )


def _state(query: str, extensions: dict[str, Any] | None = None) -> RequestState:
    params = GraphQLParams(query, None, None, extensions)
    return RequestState(_connection(), params, "req-pipeline-test", lambda operation: None)


@pytest.fixture
async def served_steps(backend: Backend) -> AsyncIterator[list[Step]]:
    """The steps of the pipeline the app serves (rate limits on, in process memory)."""
    settings = backend.settings(
        redis_url=None,
        rate_limit_enabled=True,
        rate_limit_capacity=CAPACITY,
        rate_limit_restore_rate=0.001,
    )
    app = create_app(settings)
    [route] = [
        route for route in app.routes if isinstance(route, Route) and route.path == "/graphql"
    ]
    endpoint = route.endpoint  # the endpoint object itself is the route's ASGI app
    assert isinstance(endpoint, GraphQLEndpoint)
    async with app.router.lifespan_context(app):
        yield list(endpoint.pipeline.steps)


def _inserted(steps: list[Step], before: str, step: Step) -> Pipeline:
    names = [type(existing).__name__ for existing in steps]
    at = names.index(before)
    return Pipeline([*steps[:at], step, *steps[at:]])


class PersistedDocument:
    """A stand-in for issue 10's step: the document comes from a store, by id."""

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        document_id = (state.params.extensions or {}).get("documentId")
        if document_id is not None:
            params = state.params
            state.params = GraphQLParams(
                TRUSTED[document_id], params.variables, params.operation_name, params.extensions
            )
        await call_next(state)


class CachedResponse:
    """A stand-in for issue 10's response cache: a hit answers without executing."""

    def __init__(self) -> None:
        self.hits = 0

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        self.hits += 1
        state.data = {"products": {"edges": []}}
        state.executed = True
        state.actual = 0  # nothing ran


class Failing:
    """A step that fails as a bug would."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        raise self.error


async def test_the_served_pipeline_runs_the_named_steps_in_order(
    served_steps: list[Step],
) -> None:
    assert [type(step).__name__ for step in served_steps] == [
        "Authenticate",
        "ResolveDocument",
        "Admission",
        "AnswerUnresolved",
        "RefuseNul",
        "LimitsAndCost",
        "PartnerScopes",
        "RateLimit",
        "Refund",
        "ResponseCache",
        "Execute",
    ]


async def test_a_step_before_limits_and_cost_can_supply_the_document(
    served_steps: list[Step],
) -> None:
    pipeline = _inserted(served_steps, "LimitsAndCost", PersistedDocument())

    outcome = await pipeline.run(_state("", {"documentId": "names-v1"}))

    assert outcome.status is None and outcome.executed, outcome
    assert len(outcome.body["data"]["products"]["edges"]) == 3
    assert outcome.body["extensions"]["cost"]["requestedQueryCost"] == NAMES_COST


async def test_a_step_before_execute_can_answer_and_the_refund_gives_everything_back(
    served_steps: list[Step],
) -> None:
    cache = CachedResponse()
    pipeline = _inserted(served_steps, "Execute", cache)

    outcome = await pipeline.run(_state(PRODUCT_NAMES))

    assert cache.hits == 1
    assert outcome.body["data"] == {"products": {"edges": []}}
    cost = outcome.body["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (NAMES_COST, 0)
    # the admission charge (taken before the parse) is the only spending that stays
    assert cost["admissionCost"] >= 1
    assert cost["throttleStatus"]["currentlyAvailable"] == CAPACITY - cost["admissionCost"], (
        "all the query's points came back"
    )


@pytest.mark.parametrize("before", ["Authenticate", "Execute"])
async def test_an_unexpected_error_in_any_step_is_a_masked_500(
    served_steps: list[Step], before: str, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = _inserted(served_steps, before, Failing(RuntimeError("disk on fire")))

    outcome = await pipeline.run(_state(PRODUCT_NAMES))

    assert outcome == Outcome(
        {
            "errors": [
                {
                    "message": "Internal server error",
                    "extensions": {
                        "code": "INTERNAL_SERVER_ERROR",
                        "requestId": "req-pipeline-test",
                    },
                }
            ]
        },
        500,
        False,
        None,
    )
    [logged] = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("request_id") == "req-pipeline-test"
    ]
    assert str(logged["exc_info"]) == "disk on fire"


async def test_a_stray_cancellation_is_a_masked_500(served_steps: list[Step]) -> None:
    # A CancelledError that nobody asked for (a bug below) must not escape as a crash.
    pipeline = _inserted(served_steps, "Execute", Failing(asyncio.CancelledError()))

    outcome = await pipeline.run(_state(PRODUCT_NAMES))

    assert outcome.status == 500
    assert outcome.body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


class Waiting:
    """A step that waits until it is cancelled."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()

    async def __call__(self, state: RequestState, call_next: Next) -> None:
        self.reached.set()
        await asyncio.Event().wait()


async def test_cancelling_a_request_still_cancels_it(served_steps: list[Step]) -> None:
    waiting = Waiting()
    pipeline = _inserted(served_steps, "Execute", waiting)
    task = asyncio.create_task(pipeline.run(_state(PRODUCT_NAMES)))
    reached = asyncio.create_task(waiting.reached.wait())
    # (should the request end before it gets there, the test fails instead of waiting forever)
    await asyncio.wait([task, reached], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    assert not task.done(), task.result()

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
