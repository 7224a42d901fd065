"""A TCP proxy that tests run as a separate process, to cut the path to a server on purpose.

    python tests/tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT

It prints `ready` once it listens. Each accepted connection is piped to the target, both
ways, until either side closes. The test controls it with signals: SIGSTOP black-holes it
(the kernel still accepts connections into the backlog, nothing is forwarded), SIGCONT
resumes it, SIGKILL cuts every connection at once (peers see a reset or an end of stream).
It runs outside the test process so that none of its sockets and tasks live in the test's
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _serve(listen_port: int, target_host: str, target_port: int) -> None:
    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, target_writer), _pipe(target_reader, client_writer)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    asyncio.run(_serve(port, host, target))
