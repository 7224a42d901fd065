"""serve's CoalescingTransport: one turn's writes leave in one write, in order, none lost.

The wrapped transport here records what reaches it (a real socket cannot tell one write
from two on the receiving side); the served app is covered by tests/test_server_*.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.http.server_protocol import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """A transport that keeps every write it is given and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 0


async def _next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_writes_of_one_turn_reach_the_socket_as_one_write_in_order() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())

    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b'{"data":')
    transport.writelines([b"{}", b"}"])
    assert inner.writes == [], "held until the turn ends"
    assert transport.get_write_buffer_size() == len(b'HTTP/1.1 200 OK\r\n\r\n{"data":{}}')
    await _next_turn()

    assert inner.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"data":{}}']
    transport.write(b"next")
    await _next_turn()
    assert inner.writes[1:] == [b"next"], "a later turn is a later write"


async def test_closing_sends_what_is_held_first_and_abort_drops_it() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await _next_turn()
    assert inner.writes == [b"last words"], "nothing is written twice"

    dropped = RecordingTransport()
    transport = CoalescingTransport(dropped, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await _next_turn()
    assert dropped.writes == [] and dropped.aborted


async def test_what_is_held_for_a_connection_gone_is_not_written_and_eof_follows_data() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"body")
    transport.write_eof()
    assert inner.writes == [b"body"] and inner.eof

    gone = RecordingTransport()
    transport = CoalescingTransport(gone, asyncio.get_running_loop())
    transport.write(b"too late")
    gone.aborted = True  # the peer went away before the turn ended
    await _next_turn()
    assert gone.writes == []
    assert transport.is_closing(), "everything else is the wrapped transport's"
