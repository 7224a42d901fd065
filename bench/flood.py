"""The noisy neighbour of W1n: one IP flooding shopgraph with large invalid documents.

Run as its own process (`python bench/flood.py --port P --duration S`). It opens
`--connections` keep-alive connections from `--source` (default 127.0.0.2: another IP than
wrk's 127.0.0.1, so another rate-limit bucket; any 127.x address is loopback on Linux),
and on each sends pre-built POST requests back to back as fast as the server answers,
cycling through the mix below. When done it prints one JSON line: requests, counts per
status and error code, req/s, bytes sent and its own CPU time.

The mix (`--mix`, default `valid=6,syntax=2,over=1,huge=1`), per cycle of 10 requests (every document is anonymous and uncached, so each
one that is admitted pays 1 point plus 1 per started KB, and a full bucket of 1,000
points admits about 47 of them before 429s):
- 6 `valid`: well-formed documents failing validation: `{ nope } #` and a comment up to just
  under the query-byte limit (400 GRAPHQL_VALIDATION_FAILED when admitted, else 429);
- 2 `syntax`: syntax errors of the same size: `{ nope #` and the comment, never closed (400
  GRAPHQL_PARSE_FAILED when admitted, else 429);
- 1 `over`, a document of twice the limit, and 1 `huge`, of 900 KB (the size of issue 9's attack, under
  the 1 MB body limit): refused 413 on their byte count, before any charge.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import sys
import time

import orjson
import uvloop

BIG_DOCUMENT_BYTES = 900_000
DEFAULT_MIX = "valid=6,syntax=2,over=1,huge=1"
CODE = b'"code":"'


def document(head: str, size: int) -> str:
    """`head`, then `#` and a comment of x's, `size` bytes in all (ASCII)."""
    return head + " #" + "x" * max(0, size - len(head) - 2)


def request_bytes(port: int, query: str) -> bytes:
    """A complete HTTP/1.1 POST of `{"query": query}` to /graphql, keep-alive."""
    body = orjson.dumps({"query": query})
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        # graphql-response+json: refusals before execution answer 400, not 200 (README.md)
        "Content-Type: application/json\r\nAccept: application/graphql-response+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def kinds(port: int, max_query_bytes: int) -> dict[str, bytes]:
    """The requests of the mix by name (see the module docstring)."""
    under = max_query_bytes - 10  # just under the limit
    return {
        "valid": request_bytes(port, document("{ nope }", under)),
        "syntax": request_bytes(port, document("{ nope", under)),
        "over": request_bytes(port, document("{ nope }", 2 * max_query_bytes)),
        "huge": request_bytes(port, document("{ nope }", BIG_DOCUMENT_BYTES)),
        # Not in the default mix: a tiny document, to tell size costs from per-request ones.
        "small": request_bytes(port, "{ nope }"),
    }


def the_mix(port: int, max_query_bytes: int, mix: str) -> list[bytes]:
    """One cycle of requests from a mix like `valid=6,syntax=2,over=1,huge=1`."""
    built = kinds(port, max_query_bytes)
    cycle: list[bytes] = []
    for part in mix.split(","):
        name, _, count = part.partition("=")
        cycle += [built[name.strip()]] * int(count or 1)
    return cycle


class Tally:
    """What came back, over all connections."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[str] = collections.Counter()
        self.bytes_sent = 0
        self.reconnects = 0
        self.errors = 0


def outcome(status: int, body: bytes) -> str:
    """`status` and the first error's `extensions.code`, e.g. `429 THROTTLED`."""
    start = body.find(CODE)
    if start < 0:
        return str(status)
    start += len(CODE)
    code = body[start : body.find(b'"', start)].decode("ascii", "replace")
    return f"{status} {code}"


async def _read_response(reader: asyncio.StreamReader) -> tuple[str, bool]:
    """The outcome and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    closing = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            closing = True
    body = await reader.readexactly(length) if length else b""
    return outcome(status, body), closing


async def connection(
    port: int, source: str, mix: list[bytes], offset: int, deadline: float, tally: Tally
) -> None:
    """One client connection sending the mix (starting at `offset`) until the deadline."""
    index = offset
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except OSError:
            tally.errors += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < deadline:
                payload = mix[index % len(mix)]
                index += 1
                writer.write(payload)
                await writer.drain()
                status, closing = await _read_response(reader)
                tally.statuses[status] += 1
                tally.bytes_sent += len(payload)
                if closing:
                    break
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            tally.errors += 1
        finally:
            writer.close()
        tally.reconnects += 1


async def flood(args: argparse.Namespace) -> dict[str, object]:
    """Run the flood for `args.duration` seconds; its summary."""
    mix = the_mix(args.port, args.max_query_bytes, args.mix)
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.duration
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    # Each connection starts at another place in the cycle, so the mix holds at every moment.
    await asyncio.gather(
        *(
            connection(args.port, args.source, mix, i * 3, deadline, tally)
            for i in range(args.connections)
        )
    )
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    requests = sum(tally.statuses.values())
    return {
        "connections": args.connections,
        "mix": args.mix,
        "source": args.source,
        "duration_s": round(elapsed, 3),
        "requests": requests,
        "rps": round(requests / elapsed, 1) if elapsed else 0.0,
        "statuses": dict(sorted(tally.statuses.items())),
        "mb_sent": round(tally.bytes_sent / 1e6, 1),
        "reconnects": max(0, tally.reconnects - args.connections),
        "errors": tally.errors,
        "cpu_s": round(
            usage.ru_utime - usage_before.ru_utime + usage.ru_stime - usage_before.ru_stime, 3
        ),
    }


def main() -> None:
    """Parse the command line, flood, print the summary as one JSON line."""
    parser = argparse.ArgumentParser(description="W1n's flooder (see bench/README.md)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.2", help="local address to bind")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--max-query-bytes", type=int, default=20_000)
    parser.add_argument("--mix", default=DEFAULT_MIX, help="kind=count,... per cycle")
    args = parser.parse_args()
    summary = uvloop.run(flood(args))
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
