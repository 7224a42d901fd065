"""Servers under test as child processes on loopback, and what /proc says about them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerFailed(RuntimeError):
    """A server did not start, or answered wrongly; the message says which and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_json(
    url: str,
    body: Mapping[str, Any],
    timeout: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """POST a JSON body; returns (status, response bytes), also for HTTP error statuses."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def children_of(pid: int) -> list[int]:
    """All descendants of pid (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(int(entry.name))
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        kids = parents.get(queue.pop(), [])
        found.extend(kids)
        queue.extend(kids)
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5));
    # cutime 16 and cstime 17 hold the reaped children.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kb(pid: int, key: str) -> int:
    """A kB line of /proc/<pid>/status, e.g. VmHWM or VmRSS (0 when absent)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (so fields[0] is the state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@dataclass(frozen=True, slots=True)
class PostgresCpu:
    """A reading of PostgreSQL's CPU: live backends of one database, and what exited ones left.

    A backend that exits (a pool's overflow connection, the floor's pool at its end) takes
    its counters with it, but the postmaster reaps it and adds them to its own
    cutime/cstime; the difference of two readings counts both (plus any other exited
    child of the postmaster, such as an autovacuum worker: small noise).
    """

    backends: dict[int, float]
    reaped: float

    def since(self, before: PostgresCpu) -> float:
        """CPU seconds PostgreSQL spent on this database between `before` and this reading."""
        live = sum(
            seconds - before.backends.get(pid, 0.0) for pid, seconds in self.backends.items()
        )
        gone = sum(seconds for pid, seconds in before.backends.items() if pid not in self.backends)
        return max(0.0, live - gone + self.reaped - before.reaped)


def postgres_cpu(database: str) -> PostgresCpu:
    """Read the CPU of `database`'s backends and of the postmaster's reaped children."""
    backends: dict[int, float] = {}
    reaped = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            words = title.split()
            if words[:1] == ["postgres:"]:
                # "postgres: [cluster: ]user database host(port) state"
                if database in words[1:4]:
                    backends[int(entry.name)] = cpu_seconds(int(entry.name))
            else:  # the postmaster keeps its own command line
                fields = _stat_fields(int(entry.name))
                reaped += (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            continue
    return PostgresCpu(backends, reaped)


def machine_busy_share(seconds: float = 1.0) -> float:
    """Share of all CPU time (0..1) that was busy over `seconds`, before anything is started."""

    def read() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    total_0, idle_0 = read()
    time.sleep(seconds)
    total_1, idle_1 = read()
    span = total_1 - total_0
    return 0.0 if span <= 0 else 1.0 - (idle_1 - idle_0) / span


@dataclass
class Server:
    """A server process (with its process group) listening on 127.0.0.1:port."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Where GraphQL is served."""
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def pids(self) -> list[int]:
        """The server process and its descendants."""
        if self.process is None:
            return []
        return [self.process.pid, *children_of(self.process.pid)]

    def cpu_seconds(self) -> float:
        """CPU time so far of the server and its descendants."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    def peak_rss_kb(self) -> int:
        """Peak resident memory (VmHWM) of the server and its descendants, summed."""
        return sum(status_kb(pid, "VmHWM") for pid in self.pids)

    def start(self, env: Mapping[str, str], cwd: Path, ready_timeout: float = 90.0) -> None:
        """Start it and wait until POSTing `{ __typename }` to it answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            with contextlib.suppress(OSError):
                status, _ = post_json(self.url, {"query": "{ __typename }"}, timeout=5)
                if status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise ServerFailed(
            f"{self.name} did not answer within {ready_timeout:.0f}s; see {self.log_path}"
        )

    def stop(self) -> None:
        """SIGTERM its process group, then SIGKILL after 10 s."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run_checked(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float
) -> str:
    """Run a command to completion; its stdout, or RuntimeError with its output."""
    completed = subprocess.run(
        list(argv),
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()[-2000:]
        raise RuntimeError(f"`{' '.join(argv)}` exited with {completed.returncode}:\n{output}")
    return completed.stdout
