"""The PNG chart of results: requests/s per workload, the peer PostGraphile 5 (W5) and the floor (W6) marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from report import WorkloadResult

COLOURS = {"shopgraph": "#3b6ea5", "baseline": "#9aa5b1", "peer": "#d9822b", "floor": "#2e8b57"}


def draw(results: list[WorkloadResult], path: Path, subtitle: str) -> None:
    """Horizontal bars on a log scale, labelled with req/s and the ratio to W5."""
    shown = [result for result in results if result.rps]
    peer = next((result.rps for result in shown if result.key == "W5"), None)
    figure, axes = plt.subplots(figsize=(10, 0.6 * len(shown) + 1.8), dpi=120)
    labels = [f"{result.key}  {result.title}" for result in shown]
    values = [result.rps for result in shown]
    positions = list(range(len(shown)))[::-1]
    axes.barh(positions, values, color=[COLOURS[result.role] for result in shown], height=0.65)
    axes.set_yticks(positions, labels, fontsize=8.5)
    axes.set_xscale("log")
    axes.set_xlim(min(values) / 2, max(values) * 6)
    axes.set_xlabel("requests/s, log scale (W6: sets of W1's 5 SQL statements per second)")
    for position, result in zip(positions, shown, strict=True):
        ratio = f"  ({result.rps / peer:.2f}x W5)" if peer else ""
        axes.text(result.rps * 1.08, position, f"{result.rps:,.0f}{ratio}", va="center", fontsize=8)
    if peer:
        axes.axvline(peer, color=COLOURS["peer"], linestyle="--", linewidth=1)
    floor = next((result.rps for result in shown if result.key == "W6"), None)
    if floor:
        axes.axvline(floor, color=COLOURS["floor"], linestyle=":", linewidth=1)
    handles = [Rectangle((0, 0), 1, 1, color=colour) for colour in COLOURS.values()]
    names = [
        "shopgraph",
        "baseline (bare Starlette)",
        "peers: PostGraphile 5 (W5, dashed) and 4 (W5b)",
        "floor: raw asyncpg (dotted)",
    ]
    axes.legend(handles, names, loc="upper right", fontsize=8)
    axes.set_title(f"shopgraph benchmark: requests/s per workload\n{subtitle}", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
