"""W0 and W0r: bare Starlette endpoints, the ceilings of the HTTP stack.

W0 (`app`) answers a small JSON body. W0r (`redis_app`) answers a 20 KB JSON body read
from Redis with one GET, through the client a response-cache hit (W1r) uses
(app/platform/redis_pipe.py: one multiplexed connection, hiredis): the ceiling of a server
that asks Redis once per request that way. Run by
bench/run.py as `uvicorn bare_app:app --app-dir bench --workers 1 --loop uvloop --http
httptools --no-access-log` (`bare_app:redis_app` for W0r, with `BENCH_REDIS_URL` and
`BENCH_REDIS_KEY`), the same way shopgraph is served.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.platform.redis_pipe import RedisPipe


async def graphql(request: Request) -> JSONResponse:
    """Read the body (as a real endpoint must) and answer what `{ __typename }` answers."""
    await request.body()
    return JSONResponse({"data": {"__typename": "Query"}})


app = Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])

# W0r: the body W1r's size, stored by bench/servers.py before the server starts.
_redis = RedisPipe(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
_key = os.environ.get("BENCH_REDIS_KEY", "bench:w0r")


async def graphql_from_redis(request: Request) -> Response:
    """Read the body, then answer the stored JSON, asked of Redis once."""
    await request.body()
    return Response(await _redis.execute("GET", _key), media_type="application/json")


redis_app = Starlette(routes=[Route("/graphql", graphql_from_redis, methods=["POST"])])
