"""Facts recorded with the results: the machine, how busy it was, and the versions that ran."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import procs


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, memory, kernel, and how busy the machine was just before."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "busy_before_pct": round(procs.machine_busy_share() * 100, 1),
        "loadavg": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def package_version(name: str) -> str:
    """An installed Python distribution's version."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def node_version() -> str:
    """`node --version`, or why not."""
    try:
        return procs.run_checked(["node", "--version"], timeout=10).strip()
    except (OSError, RuntimeError):
        return "not available"
