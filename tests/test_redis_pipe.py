"""The multiplexed Redis connection of the hot path (app/platform/redis_pipe.py).

Against a redis-server of each test's own (some kill it); replies must reach the caller
that asked, whatever the others do (cancel, time out, lose the connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.platform.ratelimit import pool_exhausted
from app.platform.redis_pipe import RedisPipe
from tests.redis_server import RedisServer, needs_redis_server

pytestmark = needs_redis_server


@pytest.fixture
async def pipe(redis_server: RedisServer) -> AsyncIterator[RedisPipe]:
    pipe = RedisPipe(redis_server.url)
    try:
        yield pipe
    finally:
        await pipe.aclose()


async def test_concurrent_callers_each_get_their_own_reply(pipe: RedisPipe) -> None:
    await asyncio.gather(*(pipe.execute("SET", f"k{i}", f"v{i}") for i in range(200)))

    values = await asyncio.gather(*(pipe.execute("GET", f"k{i}") for i in range(200)))

    assert values == [f"v{i}".encode() for i in range(200)]


async def test_a_cancelled_caller_leaves_the_next_reply_to_the_next_caller(
    pipe: RedisPipe,
) -> None:
    await pipe.execute("SET", "a", "1")
    await pipe.execute("SET", "b", "2")
    slow = asyncio.ensure_future(pipe.execute("EVAL", _BUSY_LUA.format(ms=100), 0))
    first = asyncio.ensure_future(pipe.execute("GET", "a"))
    second = asyncio.ensure_future(pipe.execute("GET", "b"))
    await asyncio.sleep(0.02)  # all three are in flight, behind the slow script
    first.cancel()

    assert await second == b"2"
    assert await slow == 1
    assert await pipe.execute("GET", "a") == b"1"


async def test_a_reply_error_is_a_response_error_and_the_connection_goes_on(
    pipe: RedisPipe,
) -> None:
    await pipe.execute("SET", "text", "x")

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await pipe.execute("LPUSH", "text", "y")
    assert await pipe.execute("GET", "text") == b"x"


async def test_a_script_unknown_to_redis_is_sent_in_full(
    pipe: RedisPipe, redis_server: RedisServer
) -> None:
    script = pipe.register_script("return {KEYS[1], ARGV[1]}")
    assert await script(keys=["key"], args=[7]) == [b"key", b"7"]
    with SyncRedis.from_url(redis_server.url) as admin:
        admin.script_flush()
        assert admin.script_exists(script.sha) == [False]

        assert await script(keys=["again"], args=["x"]) == [b"again", b"x"]
        assert admin.script_exists(script.sha) == [True]


async def test_the_url_picks_the_database(redis_server: RedisServer) -> None:
    pipe = RedisPipe(redis_server.url.rsplit("/", 1)[0] + "/3")
    try:
        await pipe.execute("SET", "where", "three")
    finally:
        await pipe.aclose()

    with SyncRedis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3") as three:
        assert three.get("where") == b"three"
    assert redis_server.keys() == []  # database 0


async def test_an_unanswered_command_times_out_and_the_next_one_reconnects(
    redis_server: RedisServer,
) -> None:
    pipe = RedisPipe(redis_server.url, command_timeout=0.2)
    try:
        await pipe.execute("SET", "k", "v")
        blocked = pipe.execute("BLPOP", "nothing", 2)  # answered in 2 s: far too late
        behind = pipe.execute("GET", "k")
        results = await asyncio.gather(blocked, behind, return_exceptions=True)

        assert all(isinstance(result, RedisTimeoutError) for result in results)
        assert await pipe.execute("GET", "k") == b"v"
    finally:
        await pipe.aclose()


async def test_a_killed_redis_fails_what_was_in_flight_then_the_pipe_reconnects(
    pipe: RedisPipe, redis_server: RedisServer
) -> None:
    await pipe.execute("SET", "k", "v")
    in_flight = asyncio.ensure_future(pipe.execute("EVAL", _BUSY_LUA.format(ms=300), 0))
    await asyncio.sleep(0.05)

    redis_server.kill()
    with pytest.raises(RedisConnectionError):
        await in_flight
    with pytest.raises(RedisConnectionError, match="Cannot connect"):
        await pipe.execute("PING")
    redis_server.start()

    assert await pipe.execute("SET", "k", "back") is not None
    assert await pipe.execute("GET", "k") == b"back"


async def test_a_full_pipe_waits_for_a_slot_then_refuses_as_busy(
    redis_server: RedisServer,
) -> None:
    pipe = RedisPipe(redis_server.url, max_in_flight=1, wait_seconds=0.1)
    try:
        await pipe.execute("SET", "k", "v")
        holder = asyncio.ensure_future(pipe.execute("EVAL", _BUSY_LUA.format(ms=50), 0))
        await asyncio.sleep(0.01)
        waited = await pipe.execute("GET", "k")  # the slot frees within the wait
        holder = asyncio.ensure_future(pipe.execute("EVAL", _BUSY_LUA.format(ms=400), 0))
        await asyncio.sleep(0.01)
        with pytest.raises(MaxConnectionsError) as refused:
            await pipe.execute("GET", "k")
        await holder
    finally:
        await pipe.aclose()

    assert waited == b"v"
    assert pool_exhausted(refused.value), "busy, not down: callers refuse, never fail over"


# Keeps Redis busy for {ms} milliseconds (it answers nobody meanwhile), then returns 1.
_BUSY_LUA = """
local start = redis.call('TIME')
local function elapsed()
  local now = redis.call('TIME')
  return (now[1] - start[1]) * 1000 + (now[2] - start[2]) / 1000
end
while elapsed() < {ms} do end
return 1
"""


async def test_a_peer_that_does_not_speak_resp_fails_the_command_not_the_loop() -> None:
    async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # not Redis: a web server, say
        await writer.drain()
        await reader.read(100)  # held open until the client gives up
        writer.close()

    server = await asyncio.start_server(answer_garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = RedisPipe(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(RedisConnectionError, match="not RESP"):
            await pipe.execute("PING")
    finally:
        await pipe.aclose()
        server.close()
        await server.wait_closed()
