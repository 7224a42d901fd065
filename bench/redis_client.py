"""CPU per command of a response-cache hit's script: redis-py against app/platform/redis_pipe.py.

`.venv/bin/python bench/redis_client.py [--redis-url URL] [--seconds 3] [--tasks 32]` runs
the charged-read script (app/platform/charged_read.py: a rate-limit take and a 20 KB cached
entry read together) from `--tasks` concurrent tasks under uvloop, first through redis-py
as the server configured it before (`redis_client`: a blocking pool, timeouts, retries,
hiredis), then through the multiplexed RedisPipe, and prints commands/s and this process's
CPU per command. It uses its own keys under `bench:redis-client:` in the given database
(default 12, the bench's own) and deletes them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from app.platform.charged_read import _CHARGED_READ
from app.platform.ratelimit import redis_client
from app.platform.redis_pipe import RedisPipe

PREFIX = "bench:redis-client:"
KEYS = [PREFIX + "generation", PREFIX + "sequence", PREFIX + "bucket"]
ARGS: list[str | int] = [PREFIX + "e:", "listing", 2, 240, 1_000_000_000, 100_000_000]
ENTRY = b'236 W/"etag"\n' + b"x" * 20_000  # priced, W1's size


async def _measure(call: Callable[[], Awaitable[Any]], seconds: float, tasks: int) -> str:
    await call()
    count = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < stop:
            reply = await call()
            assert reply[-1] == ENTRY, "the cached entry was not read"
            count += 1

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return f"{count / wall:9,.0f} commands/s  {cpu / count * 1e6:6.1f} us CPU each"


async def main(url: str, seconds: float, tasks: int) -> None:
    client = redis_client(url)
    pipe = RedisPipe(url)
    try:
        generation = (await client.eval(_CHARGED_READ, len(KEYS), *KEYS, *ARGS))[0]
        await client.set(f"{PREFIX}e:{generation.decode()}:listing", ENTRY)
        pooled = client.register_script(_CHARGED_READ)
        piped = pipe.register_script(_CHARGED_READ)
        print(
            "redis-py (pool) ", await _measure(lambda: pooled(keys=KEYS, args=ARGS), seconds, tasks)
        )
        print(
            "RedisPipe       ", await _measure(lambda: piped(keys=KEYS, args=ARGS), seconds, tasks)
        )
    finally:
        keys = [key async for key in client.scan_iter(match=PREFIX + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        await pipe.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=32)
    options = parser.parse_args()
    uvloop.run(main(options.redis_url, options.seconds, options.tasks))
