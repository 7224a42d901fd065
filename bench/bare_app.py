"""W0: a bare Starlette endpoint answering a small JSON body, the ceiling of the HTTP stack.

Run by bench/run.py as `uvicorn bare_app:app --app-dir bench --workers 1 --loop uvloop
--http httptools --no-access-log`, the same way shopgraph is served.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def graphql(request: Request) -> JSONResponse:
    """Read the body (as a real endpoint must) and answer what `{ __typename }` answers."""
    await request.body()
    return JSONResponse({"data": {"__typename": "Query"}})


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])
