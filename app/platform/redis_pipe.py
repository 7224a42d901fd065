"""One multiplexed Redis connection for the hot path's scripts: pipelined, no pool.

A response-cache hit is one Redis script (app/platform/charged_read.py). Through redis-py
that command costs 70-100 µs of CPU (a pooled connection checked out and back, a timeout
per read, its encoder and retry layers), more than the rest of the hit. Here every
request's commands go down one connection as they come, encoded and parsed by hiredis;
Redis answers in order, so replies are matched to their callers first in, first out
(about 25 µs a command, bench/README.md: "W1r and the Redis client").

- Connects on first use and again after a loss; concurrent callers share one attempt.
- A command not answered within `command_timeout` fails the connection (replies are
  matched by order, so one lost reply makes every later one unmatchable): everything in
  flight fails with redis-py's TimeoutError, and the next command reconnects.
- A lost connection fails what was in flight with redis-py's ConnectionError. Nothing is
  retried: a script may have run before its reply was lost (a rate-limit take must not be
  taken twice); callers fail over as they do for redis-py (RedisError).
- At most `max_in_flight` commands wait for replies; more wait up to `wait_seconds` for a
  slot, then fail with MaxConnectionsError, which `pool_exhausted` reads as busy, not down.
- Never send blocking commands (BLPOP, SUBSCRIBE) here: they would hold every caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.settings import Settings

Arg = str | bytes | int | float


def _pack(command: tuple[Arg, ...]) -> bytes:
    # hiredis's stub types the tuple as one element long; any length is packed.
    packed: bytes = hiredis.pack_command(command)  # type: ignore[arg-type]
    return packed


def _reply_error(error: hiredis.ReplyError) -> ResponseError:
    message = str(error)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


class _Replies(asyncio.Protocol):
    """One connection: writes commands, matches replies to waiting futures in order."""

    def __init__(self, pipe: RedisPipe) -> None:
        self._pipe = pipe
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._held: list[bytes] = []  # commands of this loop turn, sent in one write
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._transport is None:
            # uvloop's transports are not registered as asyncio.Transport subclasses.
            self._transport = cast("asyncio.Transport", transport)
            self._transport.set_write_buffer_limits(high=1 << 20)  # small writes: never paused

    def send(self, command: bytes, timeout: float) -> asyncio.Future[Any]:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        deadline = loop.time() + timeout
        self._waiting.append((reply, deadline))
        if not self._held:
            loop.call_soon(self._flush)
        self._held.append(command)
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check_deadline)
        return reply

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self.closed and self._transport is not None:
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        answered = 0
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as error:  # not RESP: nothing after it can be matched
                self._fail(RedisConnectionError(f"Redis sent what is not RESP: {error}"))
                return
            if reply is False:
                break
            if not self._waiting:  # a reply nobody asked for: the stream cannot be trusted
                self._fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            waiter, _ = self._waiting.popleft()
            answered += 1
            if waiter.done():  # its caller was cancelled; the reply is dropped in its turn
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_reply_error(reply))
            else:
                waiter.set_result(reply)
        if answered:
            self._pipe.slots_freed(answered)

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        deadline = self._waiting[0][1]
        if deadline <= loop.time():
            self._fail(RedisTimeoutError("Redis did not answer in time"))
        else:
            self._timer = loop.call_at(deadline, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError("Connection to Redis lost"), cause=exc)

    def _fail(self, error: Exception, cause: BaseException | None = None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
        error.__cause__ = cause
        while self._waiting:
            waiter, _ = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        self._pipe.slots_freed(None)

    def close(self) -> None:
        self._fail(RedisConnectionError("Connection to Redis closed"))


class PipeScript:
    """A Lua script run by its SHA1, sent in full once when Redis does not know it."""

    def __init__(self, pipe: RedisPipe, body: str) -> None:
        self._pipe = pipe
        self._body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()

    async def __call__(self, *, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run the script; its reply as hiredis gives it (bytes, ints, lists, None)."""
        try:
            return await self._pipe.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a new or flushed Redis: EVAL also caches it there
            return await self._pipe.execute("EVAL", self._body, len(keys), *keys, *args)


class RedisPipe:
    """Commands of every caller on one pipelined connection (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        command_timeout: float = 1.0,
        max_in_flight: int = 1000,
        wait_seconds: float = 0.5,
    ) -> None:
        options: dict[str, Any] = dict(parse_url(url))
        self._host = str(options.get("host", "localhost"))
        self._port = int(options.get("port", 6379))
        self._path: str | None = options.get("path")
        self._ssl = _ssl_context(options) if url.startswith("rediss://") else None
        self._handshake: list[tuple[Arg, ...]] = []
        if options.get("password") is not None:
            username = options.get("username")
            credentials = (username, options["password"]) if username else (options["password"],)
            self._handshake.append(("AUTH", *credentials))
        if options.get("db"):
            self._handshake.append(("SELECT", int(options["db"])))
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._max_in_flight = max_in_flight
        self._wait_seconds = wait_seconds
        self._replies: _Replies | None = None
        self._connecting: asyncio.Future[_Replies] | None = None
        self._slot_waiters: deque[asyncio.Future[None]] = deque()

    def register_script(self, body: str) -> PipeScript:
        """A script object to call with keys and args (as redis-py's register_script)."""
        return PipeScript(self, body)

    async def execute(self, *args: Arg) -> Any:
        """Send one command and wait for its reply (a reply error raises ResponseError)."""
        replies = self._replies
        if replies is None or replies.closed:
            replies = await self._connection()
        if replies.in_flight >= self._max_in_flight:
            replies = await self._slot()
        return await replies.send(_pack(args), self._command_timeout)

    async def aclose(self) -> None:
        """Close the connection (what is in flight fails)."""
        if self._replies is not None:
            self._replies.close()
            self._replies = None

    async def _connection(self) -> _Replies:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        # Shielded: one caller's cancellation must not cancel the attempt the others share.
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Replies]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._replies = attempt.result()

    async def _connect(self) -> _Replies:
        loop = asyncio.get_running_loop()
        replies = _Replies(self)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._path is not None:
                    transport, _ = await loop.create_unix_connection(lambda: replies, self._path)
                else:
                    transport, _ = await loop.create_connection(
                        lambda: replies, self._host, self._port, ssl=self._ssl
                    )
                # uvloop may call connection_made only after create_connection returned.
                replies.connection_made(transport)
                for command in self._handshake:
                    await replies.send(_pack(command), self._connect_timeout)
        except OSError as error:  # TimeoutError (asyncio.timeout's) is one too
            replies.close()
            raise RedisConnectionError(f"Cannot connect to Redis: {error}") from error
        except ResponseError:
            replies.close()
            raise
        return replies

    async def _slot(self) -> _Replies:
        """Wait until fewer than max_in_flight commands are in flight (or refuse: busy)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        while True:
            replies = self._replies
            if replies is None or replies.closed:
                replies = await self._connection()
            if replies.in_flight < self._max_in_flight:
                return replies
            waiter = loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise MaxConnectionsError(
                    f"{self._max_in_flight} Redis commands in flight for {self._wait_seconds} s"
                ) from None

    def slots_freed(self, count: int | None) -> None:
        """Wake up to `count` callers waiting for a slot (None: all of them)."""
        while self._slot_waiters and (count is None or count > 0):
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if count is not None:
                    count -= 1


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """TLS as redis-py reads it from a rediss:// URL (ssl_cert_reqs, ssl_ca_certs)."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def redis_pipe_from_settings(settings: Settings) -> RedisPipe | None:
    """The multiplexed connection of SHOPGRAPH_REDIS_URL for the hot path's scripts, if any."""
    if not settings.redis_url:
        return None
    return RedisPipe(
        settings.redis_url,
        max_in_flight=settings.redis_max_in_flight,
        wait_seconds=settings.redis_pool_timeout_seconds,
    )


__all__ = ["PipeScript", "RedisPipe", "redis_pipe_from_settings"]
